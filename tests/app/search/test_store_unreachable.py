"""A training whose artifact store cannot be used costs no training and loses nothing: the worker asks the store
before it trains, hands the training back (queued, the attempt not counted), and either leaves it for a later try
(the Celery task retries it, backing off) or, on the last try, fails the run saying which store and what to do.
Resumed once the store is back, the run sends the training again. (The bucket itself is in test_training_storage.py
and the Celery retries in tests/app/jobs/test_storage_e2e.py.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

import app.search.machine.steps as steps
from app.artifacts.base import StoreUnavailable
from app.db import session_scope
from app.db.models import Candidate, Iteration, Run, Training, utcnow
from app.search.records.runs import set_status
from app.search.service import create_task, resume_run
from tests.support.db import make_settings
from tests.support.dispatch import RecordingDispatcher
from tests.support.tasks import tiny_spec


def queued_training(sf: sessionmaker, tmp_path: Path) -> tuple[int, int, RecordingDispatcher]:
    """A running run whose first iteration waits for one queued training; (run id, training id, dispatcher)."""
    recorder = RecordingDispatcher()
    with session_scope(sf) as s:
        _, run = create_task(s, spec=tiny_spec(), owner_id=None, settings=make_settings(tmp_path), dispatcher=recorder)
        set_status(run, "running")
        it = Iteration(run=run, index=0, status="training", context={})
        s.add(it)
        s.flush()
        c = Candidate(run_id=run.id, iteration_id=it.id, index=0, origin="offline", code="x", status="queued")
        s.add(c)
        s.flush()
        t = Training(candidate_id=c.id, run_id=run.id, purpose="full", timesteps=2048, status="queued")
        s.add(t)
        s.flush()
        return run.id, t.id, recorder


def unusable_store(tmp_path: Path) -> None:
    """A file stands where the data dir's artifacts directory should be."""
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "artifacts").write_text("not a directory")


def test_on_the_last_try_the_run_fails_saying_why_and_resuming_sends_the_training_again(
    db_sf: sessionmaker, tmp_path: Path
) -> None:
    unusable_store(tmp_path)
    run_id, t_id, recorder = queued_training(db_sf, tmp_path)
    assert steps.train_step(db_sf, t_id, recorder, make_settings(tmp_path)) == "store unreachable"
    with session_scope(db_sf) as s:
        run, t = s.get(Run, run_id), s.get(Training, t_id)
        assert run.status == "failed"
        assert f"the artifacts directory {tmp_path / 'data' / 'artifacts'} cannot be made" in run.error
        assert f"Training {t_id} waits in the queue" in run.error and f"/api/v1/runs/{run_id}/resume" in run.error
        assert (t.status, t.attempts, t.worker, t.artifacts_key) == ("queued", 0, None, None)  # handed back, uncounted
        assert t.candidate.status == "queued"
    assert not (tmp_path / "data" / "work").exists()  # it stopped before training: nothing was trained for nothing

    (tmp_path / "data" / "artifacts").unlink()  # the operator fixes the store
    with session_scope(db_sf) as s:
        resume_run(s, run=s.get(Run, run_id), dispatcher=recorder)
    steps.resume_step(db_sf, run_id, recorder, make_settings(tmp_path))
    assert ("train", t_id) in recorder.calls


def test_before_the_last_try_the_training_waits_for_the_retry_and_the_run_goes_on(
    db_sf: sessionmaker, tmp_path: Path
) -> None:
    unusable_store(tmp_path)
    run_id, t_id, recorder = queued_training(db_sf, tmp_path)
    before = utcnow()
    with pytest.raises(StoreUnavailable, match="cannot be made"):
        steps.train_step(db_sf, t_id, recorder, make_settings(tmp_path), last_try=False)
    with session_scope(db_sf) as s:
        run, t = s.get(Run, run_id), s.get(Training, t_id)
        assert run.status == "running"
        assert (t.status, t.attempts) == ("queued", 0)
        # marked as sent now: the sweep leaves it to the task's retry for a lease, instead of sending it at once
        assert before - timedelta(seconds=1) <= t.heartbeat_at <= utcnow()
