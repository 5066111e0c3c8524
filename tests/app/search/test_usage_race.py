"""A run's usage is summed again each time a training records. Two trainings that finish at once used to lose one's
steps: the first completion summed before the second recorded and wrote after the second's completion had written
the full sum (seen once as a flaky ``timesteps_trained`` short by exactly one training). ``refresh_usage`` holds the
run before it sums, so the later write is always the later sum. On PostgreSQL, with transactions that commit for
real."""

from __future__ import annotations

import threading
import time

import pytest

from app.db import session_scope
from app.db.models import Candidate, Run, Training
from app.search.records.ledger import refresh_usage
from tests.app.search.harness import running_run, task_spec
from tests.support.db import committing_database, make_settings

pytestmark = pytest.mark.postgres


def _training(run_id: int, candidate_id: int, steps: int) -> Training:
    return Training(
        candidate_id=candidate_id,
        run_id=run_id,
        purpose="full",
        timesteps=steps,
        seed=0,
        status="ok",
        result={"fitness": {"mean": 1.0, "std": 0.0}, "timesteps": steps},
    )


def test_a_usage_summed_before_a_training_recorded_does_not_overwrite_a_later_sum(tmp_path) -> None:
    with committing_database("postgres", tmp_path) as sf:
        with session_scope(sf) as s:
            run, it = running_run(s, task_spec(designer="offline", samples=2), make_settings(tmp_path), "training")
            first, second = (
                Candidate(run_id=run.id, iteration_id=it.id, index=i, origin="offline", code="x", status="trained")
                for i in range(2)
            )
            s.add_all([first, second])
            s.flush()
            s.add(_training(run.id, first.id, 1000))
            run_id, second_id = run.id, second.id

        summed, go, errors = threading.Event(), threading.Event(), []

        def early() -> None:  # the first training's completion: sums, then is slow to commit
            try:
                with session_scope(sf) as s:
                    run = s.get(Run, run_id)
                    assert run is not None
                    refresh_usage(s, run)
                    summed.set()
                    go.wait(30)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)
                summed.set()

        def late() -> None:  # the second training's completion, after it recorded
            try:
                with session_scope(sf) as s:
                    run = s.get(Run, run_id)
                    assert run is not None
                    refresh_usage(s, run)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        a = threading.Thread(target=early)
        a.start()
        assert summed.wait(30)
        with session_scope(sf) as s:  # the second training records meanwhile
            s.add(_training(run_id, second_id, 2000))
        b = threading.Thread(target=late)
        b.start()
        time.sleep(0.5)  # unheld, the late sum would commit now, before the early one's stale sum
        go.set()
        a.join(30)
        b.join(30)
        assert not errors, errors
        with session_scope(sf) as s:
            run = s.get(Run, run_id)
            assert run is not None and run.usage["timesteps_trained"] == 3000, run.usage
