"""Human selection's comparisons as API bodies (shared by the API and the dashboard)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.artifacts.base import ArtifactStore
from app.db.models import Candidate, Run
from app.search.design.ranking import Group
from app.search.records.candidates import label
from app.search.records.choices import pending_for, selection_dict
from app.search.rules.numbering import iteration_number
from app.web import schemas
from app.web.present import artifacts


def video_url(c: Candidate, *, store: ArtifactStore, base: str) -> str | None:
    """The newest video of ``c``'s trainings that can be served (see ``present.artifacts``)."""
    return next((a.url for a in reversed(artifacts(c, store=store, base=base)) if a.name == "video.mp4"), None)


def video_seconds(c: Candidate) -> float | None:
    """The length of the episode in ``c``'s newest video, as its training recorded it."""
    for t in reversed(c.trainings):
        info = (t.result or {}).get("video")
        if isinstance(info, dict) and isinstance(info.get("seconds"), int | float):
            return float(info["seconds"])
    return None


def compared(
    session: Session, run: Run, group: Group, scores: dict[int, float], *, store: ArtifactStore, base: str
) -> schemas.ComparisonGroup:
    parent_id = run.iterations[group.iteration].parent_id if group.iteration < len(run.iterations) else None
    out = []
    for cid in group.candidates:
        c = session.get(Candidate, cid)
        assert c is not None
        out.append(
            schemas.ComparedCandidate(
                id=c.id,
                label=label(c),
                iteration=iteration_number(c.iteration.index) if c.iteration is not None else None,
                fitness=c.fitness,
                score=scores.get(c.id),
                incumbent=c.id == parent_id,
                video_url=video_url(c, store=store, base=base),
                video_seconds=video_seconds(c),
            )
        )
    return schemas.ComparisonGroup(
        iteration=iteration_number(group.iteration), round=group.round, position=group.position, candidates=out
    )


def comparisons_out(
    session: Session, run: Run, *, store: ArtifactStore, base: str = "/api/v1"
) -> schemas.ComparisonsOut:
    """The run's pending groups, choices and scores; video links under ``base`` (the API's, or the dashboard's "")."""
    doc = selection_dict(session, run)
    scores = doc["scores"]
    groups = pending_for(session, run)
    return schemas.ComparisonsOut(
        run_id=run.id,
        status=run.status,
        selection=doc["selection"],
        pending=[compared(session, run, g, scores, store=store, base=base) for g in groups],
        choices=[schemas.ChoiceOut(**c) for c in doc["choices"]],
        scores=scores,
        best_candidate_id=run.best_candidate_id,
    )
