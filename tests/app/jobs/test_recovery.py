"""Nothing a dead worker, a lost message or a restarted broker leaves behind stays undone, and nothing is done twice.

The sweep reads the database (the truth) and sends again what no live worker holds; every
write of a training's worker is fenced by its claim. These run on SQLite and PostgreSQL with
a dispatcher that records what would be sent; nothing trains.
"""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import sessionmaker

import app.search.machine.designing as designing
import app.search.machine.recovery as recovery
import app.search.machine.training as trainer
from app.artifacts.stores import store_of
from app.artifacts.transfer import upload
from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Iteration, Run, Training, utcnow
from app.search.design.critic import Verdict, Vetted
from app.search.records.runs import set_status
from app.search.rules.states import Origin
from app.search.service import TaskSpec, create_task
from tests.support.db import committing_database, make_settings
from tests.support.dispatch import RecordingDispatcher as Recorder
from workers.sandbox.lifeline import SandboxStopped, boot_id, identity, pid_namespace, start_time

OK_RESULT = {"fitness": {"mean": 3.0, "std": 0.0, "per_episode": [3.0]}}


def settings_for(tmp_path: Path, **overrides) -> Settings:
    return make_settings(tmp_path, **overrides)


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def running_run(sf: sessionmaker, tmp_path: Path, trainings: list[dict], iterations: int = 1) -> tuple[int, list[int]]:
    """A running run (offline, no baselines, no final seeds) whose first iteration has one full training per entry
    of ``trainings`` (column values); returns the run's id and the trainings' ids."""
    spec = TaskSpec(
        env="HalfCheetah-v5",
        description="run forward",
        designer="offline",
        iterations=iterations,
        samples=len(trainings),
        timesteps=2048,
        options={"final_seeds": 0, "baselines": False},
    )
    with session_scope(sf) as s:
        _, run = create_task(s, spec=spec, owner_id=None, settings=settings_for(tmp_path), dispatcher=Recorder())
        set_status(run, "running")
        it = Iteration(run=run, index=0, status="training", context={})
        s.add(it)
        s.flush()
        ids = []
        for i, values in enumerate(trainings):
            ok = values.get("status") == "ok"
            c = Candidate(
                run_id=run.id,
                iteration_id=it.id,
                index=i,
                origin="offline",
                code="x",
                status="trained" if ok else "queued",
                fitness=3.0 if ok else None,
            )
            s.add(c)
            s.flush()
            t = Training(
                candidate_id=c.id,
                run_id=run.id,
                purpose="full",
                timesteps=2048,
                seed=0,
                result=OK_RESULT if ok else {},
                **{"status": "queued", **values},
            )
            s.add(t)
            s.flush()
            ids.append(t.id)
        return run.id, ids


def trainings(sf: sessionmaker, ids: list[int]) -> list[Training]:
    with session_scope(sf) as s:
        return [s.get(Training, i) for i in ids]


def sweep(sf: sessionmaker, tmp_path: Path, **overrides) -> list[tuple[str, int]]:
    recorder = Recorder()
    recovery.sweep(sf, recorder, settings_for(tmp_path, **overrides))
    return recorder.calls


def dead_worker() -> str:
    """The identity of a process of this host that has ended."""
    proc = subprocess.Popen(["sleep", "60"])
    started = start_time(proc.pid)
    proc.kill()
    proc.wait()
    return f"{identity().split(':')[0]}:{proc.pid}:{started}:{pid_namespace()}:{boot_id()}"


# ------------------------------------------------------------------------------------------ trainings


def test_a_training_whose_worker_stopped_beating_is_sent_again_once(db_sf, tmp_path) -> None:
    lease = settings_for(tmp_path).training_lease_seconds
    _, (orphan, alive) = running_run(
        db_sf,
        tmp_path,
        [
            {
                "status": "running",
                "attempts": 1,
                "heartbeat_at": ago(lease + 5),
                "worker": "another-host:7:1:1:another-boot",
            },
            {"status": "running", "attempts": 1, "heartbeat_at": ago(1), "worker": "another-host:8:1:1:another-boot"},
        ],
    )
    assert sweep(db_sf, tmp_path) == [("train", orphan)]
    assert sweep(db_sf, tmp_path) == []  # a second sweep (or two at once) sends it once
    t, a = trainings(db_sf, [orphan, alive])
    assert (t.status, t.attempts, t.worker) == ("queued", 1, None)  # the dead attempt counts
    assert (a.status, a.worker) == ("running", "another-host:8:1:1:another-boot")


def test_a_training_whose_worker_process_is_gone_is_taken_back_without_waiting_for_its_lease(db_sf, tmp_path) -> None:
    dead = dead_worker()
    same_name_elsewhere = dead.rsplit(":", 1)[0] + ":the-boot-id-of-another-machine"  # a twin host name, not ours
    _, (orphan, alive, twin) = running_run(
        db_sf,
        tmp_path,
        [
            {"status": "running", "attempts": 1, "heartbeat_at": utcnow(), "worker": dead},
            {"status": "running", "attempts": 1, "heartbeat_at": utcnow(), "worker": identity()},
            {"status": "running", "attempts": 1, "heartbeat_at": utcnow(), "worker": same_name_elsewhere},
        ],
    )
    assert sweep(db_sf, tmp_path) == [("train", orphan)]
    assert [t.status for t in trainings(db_sf, [orphan, alive, twin])] == ["queued", "running", "running"]


def test_a_queued_training_whose_message_was_lost_is_sent_again_and_a_fresh_one_is_not(db_sf, tmp_path) -> None:
    lease = settings_for(tmp_path).training_lease_seconds
    _, (lost, _fresh) = running_run(db_sf, tmp_path, [{"created_at": ago(lease + 5)}, {}])
    assert sweep(db_sf, tmp_path) == [("train", lost)]
    assert sweep(db_sf, tmp_path) == []  # sent now: not again before another lease has passed


def test_an_attempt_that_was_taken_over_records_nothing(db_sf, tmp_path) -> None:
    _, (t_id,) = running_run(db_sf, tmp_path, [{"status": "running", "attempts": 2, "heartbeat_at": utcnow()}])
    late = dict(status="ok", error=None, result=OK_RESULT, artifacts_key="run-1/candidate-1/training-1/attempt-1")
    assert trainer.record_outcome(db_sf, t_id, attempt=1, **late) is False
    [t] = trainings(db_sf, [t_id])
    assert (t.status, t.result, t.artifacts_key) == ("running", {}, None)
    second = "run-1/candidate-1/training-1/attempt-2"
    assert trainer.record_outcome(db_sf, t_id, attempt=2, **{**late, "artifacts_key": second})
    [t] = trainings(db_sf, [t_id])
    assert (t.status, t.artifacts_key) == ("ok", second)


def test_the_attempt_that_records_removes_what_a_dead_attempt_uploaded(db_sf, tmp_path) -> None:
    """A worker killed between upload and record left its files; the next attempt's record makes them garbage."""
    settings = settings_for(tmp_path)
    _, (t_id,) = running_run(db_sf, tmp_path, [{"status": "running", "attempts": 1, "worker": dead_worker()}])
    store = store_of(settings)
    [t] = trainings(db_sf, [t_id])
    training = f"run-{t.run_id}/candidate-{t.candidate_id}/training-{t.id}"
    left = tmp_path / "left"
    left.mkdir()
    (left / "result.json").write_text("{}")
    (left / "policy.zip").write_bytes(b"PK")
    upload(store, f"{training}/attempt-1", left)
    # the candidate's code ("x") is no reward program: the attempt ends at once, with an outcome all the same
    assert trainer.run_training(db_sf, t_id, Recorder(), settings) != "superseded"
    [t] = trainings(db_sf, [t_id])
    assert t.attempts == 2 and t.artifacts_key == f"{training}/attempt-2", (t.status, t.error)
    assert store.list(training) and all(name.startswith("attempt-2/") for name in store.list(training))
    assert not (settings.data_dir / "artifacts" / training / "attempt-1").exists()


def test_a_training_handed_back_by_a_stopping_worker_is_queued_uncounted_and_sent_by_the_next_sweep(
    db_sf, tmp_path
) -> None:
    _, (t_id,) = running_run(db_sf, tmp_path, [{"status": "running", "attempts": 1, "heartbeat_at": utcnow()}])
    key = "run-1/candidate-1/training-1/attempt-1"
    job = trainer.TrainingJob(
        t_id, 0, "HalfCheetah-v5", "x", "forward_distance", None, 2048, 0, key, tmp_path / "work", {}, attempt=1
    )
    assert trainer.hand_back(db_sf, job) is True
    [t] = trainings(db_sf, [t_id])
    assert (t.status, t.attempts, t.worker) == ("queued", 0, None)
    assert sweep(db_sf, tmp_path) == [("train", t_id)]  # at once, though the training is new
    assert trainer.hand_back(db_sf, job) is False  # no longer ours: nothing changes


# ------------------------------------------------------------------------------------------ steps of a run


def test_a_lost_completion_hook_is_run_by_the_sweep_and_by_a_redelivered_message(db_sf, tmp_path) -> None:
    # the worker recorded both trainings, then died before calling the completion hook: the iteration stays open
    run_id, (first, _second) = running_run(db_sf, tmp_path, [{"status": "ok"}, {"status": "ok"}], iterations=2)
    recorder = Recorder()
    assert trainer.run_training(db_sf, first, recorder, settings_for(tmp_path)) == "skipped"
    assert recorder.calls == [("design", run_id)]  # the message came again: the iteration closed, the next designed
    with session_scope(db_sf) as s:
        assert [it.status for it in s.get(Run, run_id).iterations] == ["done"]

    run_id, _ = running_run(db_sf, tmp_path, [{"status": "ok"}])  # the last iteration, and no message at all
    sweep(db_sf, tmp_path)
    with session_scope(db_sf) as s:
        run = s.get(Run, run_id)
        assert (run.status, run.phase, run.best_candidate_id is not None) == ("succeeded", "done", True)


def test_a_design_whose_message_was_lost_is_sent_again_once(db_sf, tmp_path) -> None:
    lease = settings_for(tmp_path).training_lease_seconds
    run_id, _ = running_run(db_sf, tmp_path, [{"status": "ok"}], iterations=2)
    with session_scope(db_sf) as s:
        s.get(Run, run_id).iterations[0].status = "done"  # the next design was due, and its message was lost
    assert sweep(db_sf, tmp_path) == []  # the run changed just now: a design may be on its way
    with session_scope(db_sf) as s:
        s.execute(update(Run).where(Run.id == run_id).values(updated_at=ago(lease + 5)))
    assert sweep(db_sf, tmp_path) == [("design", run_id)]
    assert sweep(db_sf, tmp_path) == []


def test_a_design_at_work_holds_its_run_and_releases_it_when_its_worker_stops(sqlite_sf, tmp_path) -> None:
    fast = {"training_lease_seconds": 1.0, "training_heartbeat_seconds": 0.2}
    run_id, _ = running_run(sqlite_sf, tmp_path, [{"status": "ok"}], iterations=2)
    with session_scope(sqlite_sf) as s:
        s.get(Run, run_id).iterations[0].status = "done"
    with pytest.raises(SandboxStopped), recovery.holding(sqlite_sf, run_id, settings_for(tmp_path, **fast)):
        time.sleep(1.5)  # longer than the lease: only the design's heartbeat keeps the sweep away
        assert sweep(sqlite_sf, tmp_path, **fast) == []
        raise SandboxStopped()  # the worker shuts down in the middle of the design
    assert sweep(sqlite_sf, tmp_path, **fast) == [("design", run_id)]  # at once: the lease was released


def test_a_run_that_is_not_running_is_left_alone(db_sf, tmp_path) -> None:
    lease = settings_for(tmp_path).training_lease_seconds
    run_id, _ = running_run(db_sf, tmp_path, [{"created_at": ago(lease + 5)}])
    with session_scope(db_sf) as s:
        set_status(s.get(Run, run_id), "waiting_feedback")
    assert sweep(db_sf, tmp_path) == []
    with session_scope(db_sf) as s:
        assert [t.status for t in s.scalars(select(Training).where(Training.run_id == run_id))] == ["queued"]


# ------------------------------------------------------------------------------------------ designs delivered twice


def designing_run(sf: sessionmaker, tmp_path: Path, *, open_iteration: bool) -> int:
    """A running run of two iterations whose first is done; with ``open_iteration`` the second is being designed."""
    run_id, _ = running_run(sf, tmp_path, [{"status": "ok"}], iterations=2)
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        run.iterations[0].status = "done"
        if open_iteration:
            s.add(Iteration(run=run, index=1, status="designing", context={}))
    return run_id


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_deliveries_of_a_design_side_by_side_store_its_iteration_once(kind: str, tmp_path: Path) -> None:
    with committing_database(kind, tmp_path) as sf:  # two threads: two connections that commit
        two_deliveries_of_one_design(sf, tmp_path)


def two_deliveries_of_one_design(db_sf: sessionmaker, tmp_path: Path) -> None:
    run_id = designing_run(db_sf, tmp_path, open_iteration=True)
    with session_scope(db_sf) as s:
        iteration_id = s.get(Run, run_id).iterations[1].id
    code = "def compute_reward(state, action):\n    return state.x_velocity, {'speed': state.x_velocity}\n"
    vetted = [Vetted(Verdict.ACCEPTED, code=code, answer="", origin=Origin.OFFLINE)]
    recorder, both = Recorder(), threading.Barrier(2)

    def deliver() -> None:
        both.wait()
        designing._store_iteration(db_sf, run_id, iteration_id, vetted, recorder, settings_for(tmp_path))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with session_scope(db_sf) as s:
        it = s.get(Iteration, iteration_id)
        assert (it.status, len(it.candidates)) == ("training", 1)
        assert [(t.purpose, t.status) for t in it.candidates[0].trainings] == [("full", "queued")]
        assert recorder.calls == [("train", it.candidates[0].trainings[0].id)]


def test_a_design_delivery_that_loses_the_race_to_open_the_iteration_leaves_it_to_the_other(
    sqlite_sf, tmp_path
) -> None:
    """The moment of a redelivered design message beside the recovery's own: between this delivery's read (no
    iteration yet) and its insert, the other one opens the iteration. This one must end quietly, not fail the run.
    (PostgreSQL orders the two with the run's row lock; SQLite's reads take no lock.)"""
    run_id = designing_run(sqlite_sf, tmp_path, open_iteration=False)
    other, raced = sqlite_sf.kw["bind"], []

    def the_other_delivery_first(session, _context, _instances) -> None:
        if any(isinstance(o, Iteration) for o in session.new) and not raced:
            raced.append(True)
            with other.begin() as conn:
                conn.execute(
                    insert(Iteration).values(
                        run_id=run_id, index=1, status="designing", context={}, created_at=utcnow()
                    )
                )

    def no_designer(_run: Run):
        raise AssertionError("the losing delivery asked for a designer")

    event.listen(sqlite_sf, "before_flush", the_other_delivery_first)
    recorder = Recorder()
    try:
        designing.design(sqlite_sf, run_id, recorder, settings_for(tmp_path), no_designer)
    finally:
        event.remove(sqlite_sf, "before_flush", the_other_delivery_first)
    assert raced, "the other delivery never came between the read and the insert"
    with session_scope(sqlite_sf) as s:
        run = s.get(Run, run_id)
        assert (run.status, run.error) == ("running", None)
        assert [(i.index, i.status) for i in run.iterations] == [(0, "done"), (1, "designing")]
    assert recorder.calls == []
