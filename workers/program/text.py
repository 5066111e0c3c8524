"""Bounded, printable text from untrusted values (and what a process printed): what a program's exceptions and names may put in a message.

A program controls the text of its exceptions (``assert False, 'x' * 10**8``), the objects
that get formatted (a 5,000-digit int whose ``str`` raises), and the names it returns. Every
such piece goes through here before it reaches a result, a log, a terminal or a prompt:
formatting never raises, the text is capped, and control characters are escaped, line breaks
too, so that a program cannot forge a line of output ("...: accepted") or of a prompt.
Only text the engine composes itself (a message with the program's traceback) spans lines.
"""

from __future__ import annotations

import re
import reprlib

MAX_TEXT = 500
"""Characters kept of one exception message or repr."""
MAX_ERROR_TEXT = 4000
"""Characters kept of a whole error (a rejection, a run-time failure with its advice and traceback)."""

_REPR = reprlib.Repr()
_REPR.maxstring = MAX_TEXT
_REPR.maxother = 120
_REPR.maxlong = 60

_SOURCE_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_lines(source: str) -> list[str]:
    """The lines of ``source`` as Python's tokenizer numbers them (``\\n``, ``\\r\\n`` and ``\\r`` end a line).

    ``str.splitlines`` also breaks at U+2028, form feeds and other characters that may stand in a
    comment or a string, so line N of it can be text the program's author chose instead of line N.
    """
    lines = _SOURCE_LINE_BREAK.split(source)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _escape(c: str) -> str:
    return c.encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` with control and other non-printing characters (terminal escapes, bidi overrides) escaped.

    Newlines and tabs are kept: for text the engine composed, whose program-controlled pieces went
    through ``one_line`` already.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else _escape(c) for c in text)


def one_line(text: str) -> str:
    """``text`` on one line: every non-printing character escaped, line breaks and tabs too (``\\n``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def cap(text: str, limit: int = MAX_TEXT) -> str:
    """``clip(text, limit)`` on one line (``one_line``): a piece of program-controlled text, safe anywhere."""
    return one_line(clip(text, limit))


def cap_lines(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``clip(text, limit)`` made printable, line breaks kept: a whole message the engine composed."""
    return printable(clip(text, limit))


def safe_str(value: object, limit: int = MAX_TEXT) -> str:
    """``str(value)``, capped, on one line; never raises (a value whose ``str`` fails is named by its type)."""
    try:
        text = value if type(value) is str else str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
    return cap(text, limit)


def safe_repr(value: object, limit: int = MAX_TEXT) -> str:
    """A short ``repr`` of ``value`` on one line (long containers and strings abbreviated); never raises."""
    try:
        text = _REPR.repr(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"
    return cap(text, limit)


_PLAIN_STR = (BaseException.__str__, KeyError.__str__)


def exception_text(exc: BaseException, limit: int = MAX_TEXT) -> str:
    """``'TypeName: message'`` of ``exc``, capped, on one line; never raises.

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
