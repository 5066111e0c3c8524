"""View models for proposed fitness and human selection on the dashboard (plain dicts the templates read)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.dashboard.render import code_html
from app.db.models import Run
from app.search.records.choices import choice_dict, choices_of, pending_for
from app.search.records.proposals import open_proposal, proposal_dict, proposals_of
from app.search.rules.fitness import awaits_fitness
from app.search.rules.states import RunStatus, Selection
from app.web import files
from app.web.people import comparisons_out


def run_people(session: Session, run: Run) -> dict:
    """What the run page shows of people's part: the proposal to decide on, the groups to choose in, the records."""
    rows = proposals_of(session, run.id)
    shown = open_proposal(session, run.id) if run.status == RunStatus.WAITING_FITNESS else None
    proposal = proposal_dict(shown) if shown else None
    if proposal is not None:
        proposal["code"] = code_html(shown.source) if shown and shown.source else None
    made = choices_of(session, run.id)
    return {
        "awaiting": awaits_fitness(run.task),
        "proposal": proposal,
        "proposals": [proposal_dict(p) for p in rows],
        "human": run.task.selection == Selection.HUMAN,
        "pending": len(pending_for(session, run)),
        "choices": [choice_dict(c) for c in made],
    }


def choose_view(session: Session, run: Run, settings: Settings) -> dict | None:
    """The first group that waits for a choice, with its videos (the dashboard's links); None when none waits."""
    out = comparisons_out(session, run, store=files.artifact_store(settings), base="")
    if not out.pending:
        return None
    group = out.pending[0]
    return {
        "run": run,
        "task": run.task,
        "group": group,
        "left": len(out.pending),
        "scores": out.scores,
        "fitness_name": run.task.fitness_name,
    }
