"""Run one training of the search: claim it, train in the sandbox, record the outcome, call the completion hook.

Idempotent and safe to deliver twice: a training is claimed with a conditional update,
and one that is 'running' is only taken over when its heartbeat has gone stale or its
worker process is known dead; a finished one is never run again. The claim's attempt
number fences every later write: a worker whose training was taken over records nothing.

The worker downloads what the training starts from (a policy to continue) from the artifact store before the
sandbox starts, and uploads what the sandbox left after it ended, under a key of the attempt's own; only then is the
outcome recorded, so a recorded key always names files that are there. The sandbox never talks to the store. A store
that cannot be reached hands the training back (``StoreUnavailable`` goes up to the task, which retries it later).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.elements import ColumnElement

import app.artifacts.keys as keys
from app.artifacts.base import ArtifactStore, StoreUnavailable
from app.artifacts.stores import store_of
from app.artifacts.transfer import fetch, prune, upload
from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Run, Training, utcnow
from app.db.transient import retrying
from app.search.machine.iterations import record_training, training_finished
from app.search.machine.recovery import RELEASED
from app.search.records.dispatch import Dispatcher
from app.search.rules.fitness import fitness_of
from app.search.rules.options import options_of
from app.search.rules.states import TRAINING_TERMINAL, CandidateStatus, Purpose, RunStatus, TrainingStatus
from workers.engine.evaluate import evaluate_reward
from workers.engine.result import MAX_LIVE_CHECKPOINTS, TrainingResult, live_checkpoint, live_progress, stored
from workers.program.text import clip
from workers.sandbox.lifeline import SandboxStopped, identity, is_gone
from workers.sandbox.runner import RESUME_DIR

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The run was cancelled while this training ran."""


@dataclass(frozen=True)
class TrainingJob:
    """Everything the sandbox needs for one claimed training, read in the claim's transaction."""

    training_id: int
    run_id: int
    env: str
    reward_source: str
    fitness_name: str
    fitness_source: str | None
    """The task's own fitness program; None for a built-in metric (named by ``fitness_name``)."""
    timesteps: int
    seed: int
    key: str
    """Where this attempt's files are stored (``keys.training_key``)."""
    work: Path
    """This attempt's directory on the worker's disk: the sandbox's files (``out``) and what was downloaded."""
    options: dict[str, Any]
    """Training options as the engine takes them (``TrainOptions.engine_options``)."""
    attempt: int
    """The claim's attempt number: every later write of this worker is conditional on it."""
    policies: dict[str, str] = field(default_factory=dict)
    """Policies the training starts from: engine option (``resume_from``: the same reward continued;
    ``warm_start_from``: the parent candidate's policy) → the artifacts key of the training whose policy.zip and
    vecnormalize.pkl it reads; downloaded before the sandbox starts, the option set to the folder."""

    @property
    def out(self) -> Path:
        """Where the sandbox's files land, to be uploaded."""
        return self.work / "out"


POLICY_FILES = ("policy.zip", "vecnormalize.pkl")


def artifacts_key(t: Training) -> str:
    """Where attempt ``t.attempts`` of ``t`` stores its files: one key per attempt, so that an attempt that was taken
    over never mixes its files with the one that is recorded."""
    return keys.training_key(run_id=t.run_id, candidate_id=t.candidate_id, training_id=t.id, attempt=t.attempts)


def work_dir(settings: Settings, key: str) -> Path:
    """An attempt's scratch directory on this worker (under the data dir, kept apart from the embedded store)."""
    return settings.data_dir / "work" / key


def _ours(job: TrainingJob) -> tuple:
    """The fence: the training is still running under this job's claim."""
    return (
        Training.id == job.training_id,
        Training.status == TrainingStatus.RUNNING,
        Training.attempts == job.attempt,
    )


def _claim(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> TrainingJob | None:
    """Mark the training running and return what the sandbox needs; None when there is nothing to train."""
    stale = utcnow() - timedelta(seconds=settings.training_lease_seconds)
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or (t.status in TRAINING_TERMINAL and t.status != TrainingStatus.CANCELLED):
            return None
        run = s.get(Run, t.run_id)
        assert run is not None
        if run.status != RunStatus.RUNNING:
            t.status = TrainingStatus.CANCELLED
            return None
        orphaned: ColumnElement[bool] = (Training.status == TrainingStatus.RUNNING) & or_(
            Training.heartbeat_at.is_(None), Training.heartbeat_at < stale
        )
        if t.status == TrainingStatus.RUNNING and is_gone(t.worker):  # its worker died on this host: no need to wait
            orphaned = or_(orphaned, and_(Training.status == TrainingStatus.RUNNING, Training.attempts == t.attempts))
        res = s.execute(
            update(Training)
            .where(
                Training.id == training_id,
                or_(Training.status.in_((TrainingStatus.QUEUED, TrainingStatus.CANCELLED)), orphaned),
            )
            .values(
                status=TrainingStatus.RUNNING,
                error=None,  # an earlier attempt's error (a cancel, a crash) is not this one's
                attempts=Training.attempts + 1,
                heartbeat_at=utcnow(),
                started_at=utcnow(),
                worker=identity(),
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return None
        s.refresh(t)
        if t.attempts > settings.training_max_attempts:
            t.status = TrainingStatus.FAILED
            t.error = (
                f"the training was interrupted {t.attempts - 1} times (its worker died each time); "
                "check the workers' memory and logs, then resume the run"
            )
            t.finished_at = utcnow()
            record_training(t, run.task)
            after_commit(s, lambda: training_finished(sf, training_id, dispatcher, settings))
            return None
        if t.purpose in (Purpose.SCREEN, Purpose.FULL, Purpose.BASELINE):
            t.candidate.status = CandidateStatus.TRAINING
        task = run.task
        fname, _, _ = fitness_of(task)
        options = options_of(task).train.engine_options()
        policies = {}
        resume = s.get(Training, t.resume_from_id) if t.resume_from_id else None
        if resume is not None and resume.artifacts_key:
            policies["resume_from"] = resume.artifacts_key
        parent = s.get(Training, t.warm_start_from_id) if t.warm_start_from_id else None
        if parent is not None and parent.artifacts_key and resume is None:  # the parent's policy, another reward
            policies["warm_start_from"] = parent.artifacts_key
        key = artifacts_key(t)
        return TrainingJob(
            training_id=t.id,
            run_id=run.id,
            env=task.env,
            reward_source=t.candidate.code or "",
            fitness_name=fname,
            fitness_source=task.fitness_source,
            timesteps=t.timesteps,
            seed=t.seed,
            key=key,
            work=work_dir(settings, key),
            options=options,
            attempt=t.attempts,
            policies=policies,
        )


class _Heartbeat:
    """Refreshes the training's heartbeat while it runs, and notices when its run is cancelled or the training was
    taken over by another worker (this one was taken for dead)."""

    def __init__(self, sf: sessionmaker, job: TrainingJob, settings: Settings) -> None:
        self.sf, self.job, self.settings = sf, job, settings
        self.stop = threading.Event()
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.settings.training_heartbeat_seconds):
            try:
                with session_scope(self.sf) as s:
                    res = s.execute(update(Training).where(*_ours(self.job)).values(heartbeat_at=utcnow()))
                    if res.rowcount != 1:  # type: ignore[attr-defined]
                        self.lost.set()
                    run = s.get(Run, self.job.run_id)
                    if run is None or run.status != RunStatus.RUNNING:
                        self.cancelled.set()
            except Exception:  # a missed heartbeat (the database restarting) is not worth failing the training for
                log.exception("heartbeat of training %s failed", self.job.training_id)

    def on_event(self, event: dict) -> None:
        """Called for every progress event of the sandbox; raising stops the job.

        A checkpoint goes to the training's row as it happens (its progress, and the checkpoint itself, checked
        field by field: the sandbox is not trusted), so that the pages draw the curves while the training runs;
        the recorded outcome replaces them with the result's own when the training ends."""
        if self.cancelled.is_set() or self.lost.is_set():
            raise Cancelled()
        if event.get("event") == "checkpoint":
            try:
                with session_scope(self.sf) as s:
                    t = s.scalar(select(Training).where(*_ours(self.job)))
                    if t is not None:
                        t.result = live_result(t.result or TrainingResult(), event)
                        t.heartbeat_at = utcnow()
            except Exception:  # progress is for people; the training goes on while the database is away
                log.exception("progress of training %s not recorded", self.job.training_id)


def live_result(result: TrainingResult, event: dict) -> TrainingResult:
    """A running training's row after the checkpoint ``event``: its progress, and the checkpoint appended (the last
    ``MAX_LIVE_CHECKPOINTS`` kept, in step order: a checkpoint drops those at or after its step, which an earlier
    attempt of the training left)."""
    out = TrainingResult(**{**result, "progress": live_progress(event)})
    entry = live_checkpoint(event.get("checkpoint"))
    if entry is not None:
        kept = [c for c in result.get("checkpoints") or [] if c.get("timesteps", -1) < entry["timesteps"]]
        out["checkpoints"] = [*kept, entry][-MAX_LIVE_CHECKPOINTS:]
    return out


def _train(
    job: TrainingJob, heart: _Heartbeat, settings: Settings, store: ArtifactStore
) -> tuple[TrainingStatus, str | None, TrainingResult]:
    """Download what the training starts from, train in the sandbox; every way this can end is an outcome, never an
    exception, except an unreachable store (``StoreUnavailable``) and this worker stopping (``SandboxStopped``)."""
    options = dict(job.options)
    policies = dict(job.policies)
    if all(name in store.list(resume_key(job)) for name in POLICY_FILES):  # an earlier attempt was stopped half-way
        policies["resume_from"] = resume_key(job)
    for option, key in policies.items():
        options[option] = str(fetch(store, key, job.work / "inputs" / option, names=POLICY_FILES))
    try:
        result = evaluate_reward(
            env=job.env,
            reward_source=job.reward_source,
            fitness_name=None if job.fitness_source else job.fitness_name,
            fitness_source=job.fitness_source,
            timesteps=job.timesteps,
            seed=job.seed,
            out=job.out,
            limits=settings.sandbox_limits(),
            video=bool(options.pop("video", False)),
            options=options,
            on_event=heart.on_event,
        )
    except Cancelled:
        return TrainingStatus.CANCELLED, "the run was cancelled while this training ran", TrainingResult()
    except (SandboxStopped, StoreUnavailable):
        raise
    except Exception as e:  # a fault of ours (the artifacts disk, a bad option): record it on the training
        log.exception("training %s failed outside the sandbox", job.training_id)
        return TrainingStatus.FAILED, f"internal error: {type(e).__name__}: {clip(str(e), 500)}", TrainingResult()
    return TrainingStatus(result["status"]), result.get("error"), result


def record_outcome(
    sf: sessionmaker,
    training_id: int,
    *,
    status: TrainingStatus,
    error: str | None,
    result: TrainingResult,
    artifacts_key: str,
    stored_files: dict[str, int] | None = None,
    attempt: int | None = None,
) -> bool:
    """Store how the training ended and carry it to its candidate, in one transaction: a sibling's completion hook
    that finds every training of the iteration ended must also find every candidate's fitness.

    With ``attempt``, only while the training still runs under that claim; False when it does not (it was taken over:
    the other worker's outcome counts, and this one changes nothing)."""
    with session_scope(sf) as s:
        fence = (Training.status == TrainingStatus.RUNNING, Training.attempts == attempt) if attempt is not None else ()
        res = s.execute(
            update(Training)
            .where(Training.id == training_id, *fence)
            .values(
                status=status,
                error=error,
                result=stored(result),
                artifacts_key=keys.check_key(artifacts_key),
                stored_files=stored_files,
                finished_at=utcnow(),
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return False
        t = s.get(Training, training_id)
        assert t is not None
        s.refresh(t)
        if status != TrainingStatus.CANCELLED:
            record_training(t, t.candidate.run.task)
    return True


def _remove(store: ArtifactStore, prefix: str, keep: str | None, training_id: int) -> None:
    """Remove the files below ``prefix`` but ``keep``'s (``transfer.prune``); a store that is away keeps them, which
    costs only space."""
    try:
        gone = prune(store, prefix, keep)
    except StoreUnavailable as e:
        log.warning("training %s: files under %s not removed: %s", training_id, prefix, e.message)
        return
    if gone:
        whose = "this superseded attempt's" if keep is None else "other attempts'"
        log.info("training %s: removed %d of %s file(s) under %s", training_id, gone, whose, prefix)


def resume_key(job: TrainingJob) -> str:
    """Where the training (every attempt of it) keeps the checkpoint of an attempt stopped half-way."""
    return keys.join(keys.training_of(job.key), RESUME_DIR)


def _keep_checkpoint(store: ArtifactStore, job: TrainingJob) -> None:
    """Store the checkpoint the stopped sandbox left (``out/resume``) where the next attempt looks for it; a store
    that is away costs only the head start."""
    directory = job.out / RESUME_DIR
    if not all((directory / name).is_file() for name in POLICY_FILES):
        return
    try:
        upload(store, resume_key(job), directory)
    except StoreUnavailable as e:
        log.warning("training %s: its checkpoint was not kept (%s); the next attempt starts afresh", job.training_id, e)


def hand_back(sf: sessionmaker, job: TrainingJob, *, sent_at: datetime = RELEASED) -> bool:
    """This worker is shutting down (or cannot reach the artifact store): the training goes back to the queue as if it
    had not been taken (the attempt does not count against ``training_max_attempts``), marked as sent at ``sent_at``:
    by default never, so that the next sweep sends it (at once when `serve` starts again). Not sent from here: the
    stopping worker could take it again itself.

    The next attempt continues from the checkpoint the stopped one left (``resume_key``), where there is one."""
    with session_scope(sf) as s:
        res = s.execute(
            update(Training)
            .where(*_ours(job))
            .values(status=TrainingStatus.QUEUED, attempts=Training.attempts - 1, heartbeat_at=sent_at, worker=None)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return False
        t = s.get(Training, job.training_id)
        assert t is not None
        if t.candidate.status == CandidateStatus.TRAINING:
            t.candidate.status = CandidateStatus.QUEUED
    return True


def _clean_work(settings: Settings, job: TrainingJob) -> None:
    """Remove the training's scratch directories on this worker: this attempt's, and what attempts killed here
    half-way left (they never reached the store: files are uploaded only when an attempt ends)."""
    shutil.rmtree(work_dir(settings, keys.training_of(job.key)), ignore_errors=True)


def _recorded_as(sf: sessionmaker, training_id: int, job: TrainingJob) -> bool:
    """Whether the training's recorded outcome is this job's (its artifacts key is this attempt's)."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        return t is not None and t.status in TRAINING_TERMINAL and t.artifacts_key == job.key


def _hook_if_ended(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """A message for a training that has ended: its worker may have died between recording it and calling the
    completion hook, so call the hook (it is idempotent)."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        ended = t is not None and t.status in TRAINING_TERMINAL and t.status != TrainingStatus.CANCELLED
    if ended:
        training_finished(sf, training_id, dispatcher, settings)


def run_training(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> str:
    """Claim, download, train, upload, record, hook. Returns what happened ('skipped', 'handed back', 'superseded',
    or the training's status). Raises ``StoreUnavailable`` after handing the training back when the artifact store
    could not be reached: the caller decides when to try again."""
    job = _claim(sf, training_id, dispatcher, settings)
    if job is None:
        _hook_if_ended(sf, training_id, dispatcher, settings)
        return "skipped"
    store = store_of(settings)
    heart = _Heartbeat(sf, job, settings)
    heart.thread.start()
    started = time.monotonic()
    try:
        store.ensure()  # a store that is away costs no training
        status, error, result = _train(job, heart, settings, store)
        files = upload(store, job.key, job.out)  # while the heartbeat still holds the claim
    except SandboxStopped:  # this worker is shutting down
        heart.stop.set()
        _keep_checkpoint(store, job)
        _clean_work(settings, job)
        return "handed back" if hand_back(sf, job) else "superseded"
    except StoreUnavailable as e:  # sent again by the task's retry (or, failing that, by the sweep after a lease)
        heart.stop.set()
        _clean_work(settings, job)
        log.warning("training %s: %s; handed back", training_id, e.message)
        hand_back(sf, job, sent_at=utcnow())
        raise
    finally:
        heart.stop.set()
    _clean_work(settings, job)
    result["wall_seconds"] = time.monotonic() - started
    recorded = retrying(
        lambda: record_outcome(
            sf,
            training_id,
            status=status,
            error=error,
            result=result,
            artifacts_key=job.key,
            stored_files=files,
            attempt=job.attempt,
        ),
        seconds=settings.training_lease_seconds,
        what=f"recording training {training_id}",
    )
    if not recorded and not _recorded_as(sf, training_id, job):  # (a retried commit may have gone through)
        log.warning(
            "training %s: attempt %s ended after another worker took the training over; its outcome is dropped "
            "and its files under %s are removed",
            training_id,
            job.attempt,
            job.key,
        )
        _remove(store, job.key, None, training_id)
        return "superseded"
    prefix = keys.training_of(job.key)
    if prefix != job.key:  # what earlier attempts left: a copy uploaded before a kill, a checkpoint
        _remove(store, prefix, job.key.rsplit("/", 1)[1], training_id)
    if status != TrainingStatus.CANCELLED:
        training_finished(sf, training_id, dispatcher, settings)
    return status.value
