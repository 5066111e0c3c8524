"""Files streamed from the artifact store, whole or by byte range (RFC 9110 §14), so that a video plays and seeks in
the browser from either backend. One range is served as 206 with its Content-Range; several, or a header this does
not parse, get the whole file (as the RFC allows); a range that starts past the end gets 416."""

from __future__ import annotations

import re

from fastapi.responses import Response, StreamingResponse

from app.artifacts.base import ArtifactStore
from app.errors import RewardsmithError

RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(RewardsmithError):
    status_code = 416
    code = "range_not_satisfiable"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) that a ``Range`` header asks of a file of ``size`` bytes; None for the whole file."""
    text = (header or "").strip()
    m = RANGE.fullmatch(text)
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"the range {text[:40]!r} asks for no bytes of this {size}-byte file")
        return max(0, size - n), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise RangeNotSatisfiable(f"the range {text[:40]!r} starts past the end of this {size}-byte file")
    return start, end


def stream(
    store: ArtifactStore, key: str, *, size: int, media_type: str, filename: str, range_header: str | None
) -> Response:
    """The file under ``key`` (of ``size`` bytes) as a download; the part ``range_header`` asks for, when it asks."""
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'attachment; filename="{filename}"'}
    try:
        part = byte_range(range_header, size)
    except RangeNotSatisfiable as e:
        return Response(e.message, status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = part or (0, size)
    body = store.read(key, start, end)  # opens the file now: a missing one fails before the response starts
    headers["Content-Length"] = str(end - start)
    if part is None:
        return StreamingResponse(body, media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(body, status_code=206, media_type=media_type, headers=headers)
