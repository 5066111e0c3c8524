"""Row locks that make "count, then add" one step: a per-user limit that is checked and then written cannot be
passed by requests that all count before any of them writes.

PostgreSQL locks the row (``SELECT … FOR NO KEY UPDATE``: rows that merely refer to the user, a new task's
foreign key, are not held up by it); a second transaction that holds the same row waits until the
first ends, and its next statement (READ COMMITTED) sees what the first committed. SQLite has no row locks: a write
takes the database's one write lock until the transaction ends, so a write that changes nothing serialises the
same way (the Python driver begins a transaction at the first write, so the snapshot starts there too).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.models import Run, User


def _hold(session: Session, key: InstrumentedAttribute[int], value: int) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(key.class_).where(key == value).values({key.key: key}).execution_options(synchronize_session=False)
        )
    else:
        session.execute(select(key).where(key == value).with_for_update(key_share=True))


def hold_user(session: Session, user_id: int) -> None:
    """Serialise the rest of this transaction with every other one that holds the same user (until commit or
    rollback): counts made after this call see everything those transactions committed."""
    _hold(session, User.id, user_id)


def hold_run(session: Session, run_id: int) -> None:
    """The same for a run: figures summed over its rows (its usage) and then written are not overwritten by a
    transaction that summed before a training recorded."""
    _hold(session, Run.id, run_id)
