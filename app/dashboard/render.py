"""Templates (autoescaped; each page gets its CSRF token) and filters."""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from app.search.records.progress import duration
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


HIDDEN = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Characters that change how text around them is shown without showing themselves: bidi controls (U+202E turns
what follows around, "Trojan Source") and control characters (tab, newline and carriage return are kept)."""


def visible(value: object) -> object:
    """Every value a template prints (``finalize``): ``HIDDEN`` characters as visible escapes (``\\u202e``), in user
    and program text, attributes and highlighted code alike; everything else as it is."""
    if not isinstance(value, str) or not HIDDEN.search(value):
        return value
    shown = HIDDEN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    return Markup(shown) if isinstance(value, Markup) else shown  # an escape is plain text inside markup too


templates.env.finalize = visible
templates.env.filters["num"] = number
templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
CODE_CSS = _FORMATTER.get_style_defs(".code")
"""The highlighter's colours, served as /code.css (a stylesheet of our own: the CSP allows no inline styles)."""


def _spec_description(spec: EnvSpec) -> str:
    return describe(spec)


templates.env.globals["spec_description"] = _spec_description
