"""Bounded, printable text from untrusted values (and what a process printed): what a program's exceptions and names may put in a message.

A program controls the text of its exceptions (``assert False, 'x' * 10**8``), the objects
that get formatted (a 5,000-digit int whose ``str`` raises), and the names it returns. Every
such piece goes through here before it reaches a result, a log, a terminal or a prompt:
formatting never raises, the text is capped, and control characters are escaped.
"""

from __future__ import annotations

import reprlib

MAX_TEXT = 500
"""Characters kept of one exception message or repr."""
MAX_ERROR_TEXT = 4000
"""Characters kept of a whole error (a rejection, a run-time failure with its advice and traceback)."""

_REPR = reprlib.Repr()
_REPR.maxstring = MAX_TEXT
_REPR.maxother = 120
_REPR.maxlong = 60


def printable(text: str) -> str:
    """``text`` with control and other non-printing characters (terminal escapes, bidi overrides) escaped.

    Newlines and tabs are kept: messages span lines.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii") for c in text)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def cap(text: str, limit: int = MAX_TEXT) -> str:
    """``clip(text, limit)`` made printable: what may reach a terminal, a log or a prompt."""
    return printable(clip(text, limit))


def safe_str(value: object, limit: int = MAX_TEXT) -> str:
    """``str(value)``, capped; never raises (a value whose ``str`` fails is named by its type)."""
    try:
        text = value if type(value) is str else str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
    return cap(text, limit)


def safe_repr(value: object, limit: int = MAX_TEXT) -> str:
    """A short ``repr`` of ``value`` (long containers and strings abbreviated); never raises."""
    try:
        text = _REPR.repr(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
    return cap(text, limit)


_PLAIN_STR = (BaseException.__str__, KeyError.__str__)


def exception_text(exc: BaseException, limit: int = MAX_TEXT) -> str:
    """``'TypeName: message'`` of ``exc``, capped; never raises.

    Exceptions that show their arguments are formatted from the arguments with ``reprlib``,
    so that a huge list in ``assert False, big`` is abbreviated rather than formatted whole.
    """
    args = exc.args
    if type(exc).__str__ not in _PLAIN_STR:
        message = safe_str(exc, limit)
    elif len(args) == 1 and type(args[0]) is str and not isinstance(exc, KeyError):
        message = cap(args[0], limit)
    elif len(args) == 1:
        message = safe_repr(args[0], limit)
    else:
        message = safe_repr(args, limit) if args else ""
    return f"{type(exc).__name__}: {message}"
