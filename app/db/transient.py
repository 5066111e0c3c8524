"""Telling a database that went away for a moment (a restart, a failover, a lock) from a fault that will repeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(e: BaseException) -> bool:
    """The database could not be reached or was busy: trying again later may work."""
    return isinstance(e, OperationalError | InterfaceError) or (isinstance(e, DBAPIError) and e.connection_invalidated)


def retrying(fn: Callable[[], T], *, seconds: float, what: str) -> T:
    """``fn()``, tried again for up to ``seconds`` while the database is away; other errors are raised at once."""
    deadline, delay = time.monotonic() + seconds, 0.5
    while True:
        try:
            return fn()
        except Exception as e:
            if not is_transient(e) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: the database is unreachable (%s); trying again in %.1f s", what, type(e).__name__, delay)
            time.sleep(delay)
            delay = min(2 * delay, 5.0)
