"""Turning rows into API bodies (shared by the JSON API and the dashboard)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

import app.search.design.learner as learner
import app.search.design.verdict as verdict
from app.artifacts.base import ArtifactStore
from app.config import Settings
from app.db.models import Candidate, Feedback, FitnessProposal, Run, Task, User
from app.search.design.diagnostics import findings, run_findings
from app.search.records.candidates import describing_training
from app.search.records.progress import run_progress
from app.search.records.proposals import proposal_dict, proposals_of
from app.search.records.run_json import designer_label, lineage_dict
from app.search.records.runs import summary
from app.search.rules.numbering import iteration_number, maybe_number
from app.web import files, schemas


def task_out(task: Task, owner: User | None = None) -> schemas.TaskOut:
    run = task.runs[-1] if task.runs else None
    return schemas.TaskOut(
        id=task.id,
        run_id=run.id if run else None,
        env=task.env,
        description=task.description,
        fitness=task.fitness_name,
        fitness_source=task.fitness_source,
        designer=task.designer,
        iterations=task.iterations,
        samples=task.samples,
        timesteps=task.timesteps,
        seed=task.seed,
        wait_for_feedback=task.wait_for_feedback,
        options=task.options,
        selection=task.selection,
        owner=owner.name if owner else None,
        status=run.status if run else None,
        created_at=task.created_at,
    )


def progress(session: Session, run: Run, settings: Settings) -> schemas.Progress:
    """Where the run stands (``app.search.records.progress``), with its candidates counted by status."""
    counts = Counter(c.status.value for c in run.candidates if not c.origin.is_baseline)
    p = run_progress(session, run, settings)
    return schemas.Progress(
        iteration=len(run.iterations),
        iterations=run.task.iterations,
        candidates=dict(counts),
        trainings_done=p.trainings_done,
        trainings_total=p.trainings_total,
        timesteps_trained=p.timesteps_done,
        timesteps_total=p.timesteps_total,
        elapsed_seconds=p.elapsed_seconds,
        eta_seconds=p.eta_seconds,
        rate=p.rate,
        rate_source=p.rate_source,
        tokens=p.tokens,
        cost=p.cost,
    )


def run_out(session: Session, run: Run, settings: Settings) -> schemas.RunOut:
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    return schemas.RunOut(
        id=run.id,
        task_id=run.task_id,
        status=run.status,
        phase=run.phase,
        error=run.error,
        progress=progress(session, run, settings),
        best_candidate_id=run.best_candidate_id,
        best_fitness=best.fitness if best else None,
        designer=designer_label(run, settings.llm_model),
        usage=run.usage or {},
        final=run.final or {},
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        summary=summary(run),
        diagnostics=run_findings(run),
        selection=run.task.selection,
        proposed_fitness=latest_proposal(session, run),
    )


def proposal_out(p: FitnessProposal) -> schemas.ProposalOut:
    return schemas.ProposalOut(**proposal_dict(p))


def latest_proposal(session: Session, run: Run) -> schemas.ProposalOut | None:
    """The run's newest fitness proposal (a task whose fitness is 'propose')."""
    rows = proposals_of(session, run.id)
    return proposal_out(rows[-1]) if rows else None


def candidate_summary(c: Candidate) -> schemas.CandidateSummary:
    return schemas.CandidateSummary(
        id=c.id,
        run_id=c.run_id,
        iteration=iteration_number(c.iteration.index) if c.iteration is not None else None,
        index=c.index,
        origin=c.origin,
        parent_id=c.parent_id,
        status=c.status,
        fitness=c.fitness,
        fitness_std=c.fitness_std,
        error=c.error,
    )


def artifacts(c: Candidate, *, store: ArtifactStore, base: str = "/api/v1") -> list[schemas.ArtifactLink]:
    """Links to the files of ``c``'s trainings that can be served (see ``files.artifact_files``)."""
    return [
        schemas.ArtifactLink(
            training_id=t.id, purpose=t.purpose, name=name, url=f"{base}/candidates/{c.id}/artifacts/{t.id}/{name}"
        )
        for t in c.trainings
        for name in files.artifact_files(t, store)
    ]


def feedback_out(f: Feedback, user: User | None) -> schemas.FeedbackOut:
    return schemas.FeedbackOut(
        id=f.id,
        candidate_id=f.candidate_id,
        text=f.text,
        rating=f.rating,
        user=user.name if user else None,
        used_in_iteration=maybe_number(f.used_in_iteration),
        created_at=f.created_at,
    )


def candidate_out(session: Session, c: Candidate, *, store: ArtifactStore) -> schemas.CandidateOut:
    main = describing_training(c)
    result = (main.result or {}) if main else {}
    return schemas.CandidateOut(
        **candidate_summary(c).model_dump(),
        code=c.code,
        answer=c.answer,
        critic=c.critic or [],
        dry_run=c.dry_run or {},
        reflection=c.reflection,
        diagnostics=findings(c),
        components=result.get("components", {}),
        checkpoints=result.get("checkpoints", []),
        learner=schemas.LearnerOut(**verdict.summary(result, findings(c))),
        episodes=result.get("episodes", []),
        trainings=[
            schemas.TrainingOut(
                id=t.id,
                purpose=t.purpose,
                seed=t.seed,
                timesteps=t.timesteps,
                status=t.status,
                attempts=t.attempts,
                error=t.error,
                fitness=(t.result or {}).get("fitness"),
                progress=(t.result or {}).get("progress"),
                steps_per_second=(t.result or {}).get("steps_per_second"),
                learner=learner.final(t.result or {}),
                continue_from_parent=t.continue_from_parent,
                warm_start_from_training=t.warm_start_from_id,
                warm_start=(t.result or {}).get("warm_start"),
            )
            for t in c.trainings
        ],
        artifacts=artifacts(c, store=store),
        feedback=[feedback_out(f, session.get(User, f.user_id) if f.user_id else None) for f in c.feedback],
        duplicate_of=c.duplicate_of_id,
        screen=schemas.ScreenOut(**{k: c.screen.get(k) for k in schemas.ScreenOut.model_fields}) if c.screen else None,
        lineage=schemas.LineageOut(**lineage) if (lineage := lineage_dict(c)) else None,
    )
