"""The dashboard's signed-in user and its CSRF defence.

The session cookie holds a random id (see app.sessions); every state-changing dashboard request must come from the
dashboard's own pages: a same-origin ``Origin`` / ``Sec-Fetch-Site`` where the browser sends them, and always the CSRF
token of the session (or, on the login form, of the pre-session cookie) in the form or in the ``X-CSRF-Token`` header
that htmx sends. The REST API never reads these cookies."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response

from app.config import Settings
from app.db.models import User
from app.errors import Forbidden
from app.sessions import SignedIn, csrf_token, signed_in
from app.web.deps import SessionDep, SettingsDep

SESSION_COOKIE = "rewardsmith_session"
LOGIN_COOKIE = "rewardsmith_login"
"""The pre-session cookie: binds the login form's CSRF token to this browser (login CSRF)."""
HOST_PREFIX = "__Host-"
"""Under https both cookies carry this prefix: a browser keeps such a cookie only if it was set Secure, for Path=/
and without a Domain, by a secure page of this very host, so neither a subdomain nor a plain-http page (another port
of the same host included) can plant or overwrite one. Only the prefixed name is read under https."""
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next = quote(next_path, safe="/")


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request, name: str) -> str:
    """The name ``name`` has on this request: with the ``__Host-`` prefix under https."""
    return HOST_PREFIX + name if _https(request) else name


def session_secret(request: Request) -> str | None:
    """The session id this browser sent, under the name the request's scheme allows (a planted plain-named cookie
    is not read under https)."""
    return request.cookies.get(cookie_name(request, SESSION_COOKIE))


def current_session(request: Request, session: SessionDep, settings: SettingsDep) -> SignedIn | None:
    """The live dashboard session of this request's cookie, if any (its CSRF token goes to the templates)."""
    secret = session_secret(request)
    live = signed_in(session, secret=secret, settings=settings) if secret else None
    if live is not None:
        request.state.csrf = live.csrf
    return live


SignedInDep = Annotated[SignedIn | None, Depends(current_session)]


def page_user(request: Request, live: SignedInDep) -> User:
    """The signed-in user; anonymous visitors are sent to /login (and come back afterwards)."""
    if live is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return live.user


PageUser = Annotated[User, Depends(page_user)]


def _same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site or origin (a same-site page on another port
    or subdomain included); requests without these headers (not from a browser) rely on the token alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    return origin is None or (origin != "null" and urlsplit(origin).netloc == request.headers.get("host"))


def login_csrf(request: Request, settings: Settings) -> str | None:
    """The login form's CSRF token for this browser's pre-session cookie, if it has one."""
    secret = request.cookies.get(cookie_name(request, LOGIN_COOKIE))
    return csrf_token(settings, purpose="login", secret=secret) if secret else None


async def csrf_protect(request: Request, live: SignedInDep, settings: SettingsDep) -> None:
    """Refuse a state-changing request that did not come from the dashboard's own page (403)."""
    if request.method in SAFE_METHODS:
        return
    if not _same_origin(request):
        raise Forbidden("this request came from another site; use the dashboard's own pages")
    expected = live.csrf if live is not None else login_csrf(request, settings)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            "this form is out of date or your session has ended: reload the page (and log in again if asked), "
            "then send it again"
        )


def _login_path(request: Request) -> str:
    return "/" if _https(request) else "/login"  # a __Host- cookie must be for Path=/


def _cookie(response: Response, request: Request, name: str, value: str, **kwargs: Any) -> None:
    response.set_cookie(cookie_name(request, name), value, httponly=True, secure=_https(request), **kwargs)


def start_login_form(request: Request, settings: Settings) -> str | None:
    """Give the login form a CSRF token: the session's if signed in, else one bound to a pre-session cookie that
    ``finish_login_form`` sets on the response. Returns the new pre-session id, if one is needed."""
    if getattr(request.state, "csrf", None):
        return None
    secret = request.cookies.get(cookie_name(request, LOGIN_COOKIE)) or secrets.token_urlsafe(32)
    request.state.csrf = csrf_token(settings, purpose="login", secret=secret)
    return secret


def finish_login_form(response: Response, request: Request, secret: str | None) -> Response:
    if secret is not None:
        _cookie(response, request, LOGIN_COOKIE, secret, samesite="strict", path=_login_path(request))
    return response


def set_session_cookie(response: Response, request: Request, secret: str, settings: Settings) -> None:
    """Sign the browser in; the pre-session cookie has done its work."""
    _cookie(response, request, SESSION_COOKIE, secret, samesite="lax", max_age=int(settings.session_max_seconds))
    response.delete_cookie(
        cookie_name(request, LOGIN_COOKIE), path=_login_path(request), secure=_https(request), httponly=True
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(cookie_name(request, SESSION_COOKIE), secure=_https(request), httponly=True)
