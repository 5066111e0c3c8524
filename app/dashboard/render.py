"""Templates, filters and the page user (anonymous visitors are sent to /login)."""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from app.api.deps import optional_user
from app.db.models import User

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next = quote(next_path, safe="/")


def page_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


PageUser = Annotated[User, Depends(page_user)]

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
templates.env.globals["code_css"] = Markup(_FORMATTER.get_style_defs(".code"))


def _spec_description(spec) -> str:
    from envs.describe import describe

    return describe(spec)


templates.env.globals["spec_description"] = _spec_description
