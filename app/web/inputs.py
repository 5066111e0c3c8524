"""Input the service cannot store or answer faithfully, refused up front with a 422 that says why: JSON numbers
that are not numbers (NaN, Infinity), text no database can hold (lone surrogates, NUL characters), and nesting
deeper than any request needs (deep structures overflow the encoders' recursion)."""

from __future__ import annotations

import json

from app.errors import InvalidInput

MAX_DEPTH = 32
"""No request body of the API nests deeper than a few levels (a task's options: 4)."""


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NotFinite(name)


def check_text(text: str, *, field: str | None = None) -> None:
    """InvalidInput unless ``text`` can be stored as it is (valid Unicode without NUL characters)."""
    if "\x00" in text:
        raise InvalidInput("text may not contain NUL characters (\\u0000)", field=field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            "text must be valid Unicode: it holds a lone surrogate (a \\ud800-\\udfff escape without its pair)",
            field=field,
        ) from None


def check_json(body: bytes) -> None:
    """InvalidInput if the JSON ``body`` holds NaN or Infinity, text that cannot be stored, or nests deeper than
    ``MAX_DEPTH``; a body that is not JSON at all is left to the framework's parser (and its 422)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except _NotFinite as e:
        raise InvalidInput(f"JSON numbers must be finite: {e} is not a JSON number") from None
    except (ValueError, RecursionError):
        return
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"the JSON body nests deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((k, depth + 1) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
