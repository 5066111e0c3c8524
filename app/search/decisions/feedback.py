"""A person's words on a candidate, carried into the next iteration's prompt."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Candidate, Feedback
from app.errors import InvalidInput
from app.search.rules.options import FEEDBACK_CHARS


def add_feedback(
    session: Session, *, candidate: Candidate, text: str, rating: int | None, user_id: int | None
) -> Feedback:
    """Record a person's view of a candidate; the next iteration's prompt carries it."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("feedback text is empty; say what the policy does wrong or right", field="text")
    if len(text) > FEEDBACK_CHARS:
        raise InvalidInput(f"feedback is limited to {FEEDBACK_CHARS:,} characters", field="text")
    if rating is not None and not (isinstance(rating, int) and 1 <= rating <= 5):
        raise InvalidInput("rating must be an integer from 1 to 5", field="rating")
    fb = Feedback(candidate_id=candidate.id, run_id=candidate.run_id, user_id=user_id, text=text, rating=rating)
    session.add(fb)
    session.flush()
    return fb
