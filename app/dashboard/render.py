"""Templates (autoescaped; each page gets its CSRF token) and filters."""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from envs.describe import describe
from envs.spec import EnvSpec


def _csrf(request: Request) -> dict:
    """The page's CSRF token (set by the session or the login form); forms and htmx send it back."""
    return {"csrf_token": getattr(request.state, "csrf", "")}


templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates", context_processors=[_csrf])

_FORMATTER = HtmlFormatter(linenos="inline", cssclass="code", wrapcode=True)


def code_html(code: str | None) -> Markup:
    return Markup(highlight(code or "", PythonLexer(), _FORMATTER))


def diff_html(old: str | None, new: str | None, old_name: str, new_name: str) -> Markup:
    lines = difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(), old_name, new_name, lineterm="")
    text = "\n".join(lines)
    if not text:
        return Markup('<p class="muted">No differences.</p>')
    return Markup(highlight(text, DiffLexer(), HtmlFormatter(cssclass="code diff")))


def number(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}g}"


def when(d: datetime | None) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S UTC") if d else "—"


templates.env.filters["num"] = number
templates.env.filters["when"] = when
CODE_CSS = _FORMATTER.get_style_defs(".code")
"""The highlighter's colours, served as /code.css (a stylesheet of our own: the CSP allows no inline styles)."""


def _spec_description(spec: EnvSpec) -> str:
    return describe(spec)


templates.env.globals["spec_description"] = _spec_description
