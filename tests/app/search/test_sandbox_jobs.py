"""Every sandbox job a person can start goes through one gateway (``app.search.decisions.sandbox_jobs``): a slot
per user and per machine, a 429 that says so when none is free, and no database transaction held while it runs.

One test per caller: the dashboard's check (also in tests/app/dashboard/test_checks.py), an edited fitness through
the API, through the dashboard's form and from the command line, and a request for another proposal through the
API and the dashboard. The proposals are made by the offline designer and measured in the real sandbox.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import make_engine, session_scope
from app.db.models import FitnessProposal, Run, User
from app.errors import RateLimited
from app.search.decisions import sandbox_jobs
from app.search.service import COMMAND_LINE, ProgramKind, check_for_person, replace
from tests.app.api.harness import API, Api, make_api
from tests.app.api.test_fitness import BACKWARDS, JUMP_HIGH, proposed
from tests.app.dashboard.harness import TASK_FORM
from tests.app.dashboard.test_checks import held
from tests.app.dashboard.test_forms import signed_in
from tests.app.dashboard.test_people_forms import proposal_run
from tests.support.db import fresh_postgres_database


@contextmanager
def taken(settings: Settings, *owners: str) -> Iterator[None]:
    """Hold every slot of ``owners`` ('user-7', 'all', 'command-line'), as checks already running would."""
    count = {"all": settings.check_slots_total}
    with ExitStack() as stack:
        for owner in owners:
            for _ in range(count.get(owner, settings.check_slots_per_user)):
                assert stack.enter_context(sandbox_jobs._slot(sandbox_jobs.slots_dir(settings), owner, 99))
        yield


def user_id(api: Api, name: str) -> int:
    with session_scope(api.sf) as s:
        return int(s.scalar(select(User.id).where(User.name == name)))


def proposals_and_status(api: Api, run_id: int) -> tuple[list[str], str]:
    with session_scope(api.sf) as s:
        rows = s.scalars(select(FitnessProposal).where(FitnessProposal.run_id == run_id).order_by(FitnessProposal.id))
        return [p.status for p in rows], s.get(Run, run_id).status


def test_the_dashboards_check_takes_a_slot(sqlite_sf: sessionmaker, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, check_slots_per_user=1, check_slots_total=2)
    source = "def compute_fitness(traj):\n    return 1.0\n"
    with session_scope(sqlite_sf) as s, taken(settings, "user-7"):
        with pytest.raises(RateLimited, match="you already have 1 program checks running"):
            check_for_person(
                s, settings=settings, user_id=7, env="HalfCheetah-v5", source=source, kind=ProgramKind.FITNESS
            )
        assert (
            check_for_person(
                s, settings=settings, user_id=8, env="HalfCheetah-v5", source=source, kind=ProgramKind.FITNESS
            ).outcome
            == "ok"
        ), "another user's slots are free"


def test_an_edit_through_the_api_takes_the_users_slot_and_the_machines(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, check_slots_per_user=1, check_slots_total=2)
    alice = api.user("alice")
    run_id = proposed(api, alice)
    calls = list(api.dispatcher.calls)
    for owners, words in (
        ((f"user-{user_id(api, 'alice')}",), "you already have 1 program checks running"),
        (("all",), "the server is already running 2 program checks"),
    ):
        with taken(api.settings, *owners):
            res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"source": JUMP_HIGH}, headers=alice)
        assert res.status_code == 429, res.text
        assert res.json()["error"]["code"] == "rate_limited" and words in res.json()["error"]["message"]
        assert res.headers["Retry-After"] == "120"
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness") and api.dispatcher.calls == calls
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"source": JUMP_HIGH}, headers=alice)
    assert res.status_code == 200 and res.json()["status"] == "waiting_fitness", "the slots are given back"


def test_an_edit_through_the_dashboard_takes_a_slot(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, check_slots_per_user=1, check_slots_total=1)
    browser = signed_in(api, "alice")
    run_id = proposal_run(api, browser)
    with taken(api.settings, "all"):
        r = browser.post(f"/runs/{run_id}/fitness/edit", {"source": JUMP_HIGH})
    assert r.status_code == 429 and r.headers["Retry-After"] == "120"
    assert "the server is already running 1 program checks" in r.text and "Highest torso height" in r.text
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness")


def test_an_edit_from_the_command_line_takes_a_slot_of_the_machine(sqlite_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(sqlite_sf, tmp_path, check_slots_per_user=1, check_slots_total=1)
    run_id = proposed(api, api.user("alice"))
    with session_scope(api.sf) as s, taken(api.settings, "all"):
        run = s.get(Run, run_id)
        with pytest.raises(RateLimited, match="the server is already running 1 program checks"):
            replace(
                s,
                run=run,
                source=JUMP_HIGH,
                user_id=None,
                who=COMMAND_LINE,
                settings=api.settings,
                dispatcher=api.dispatcher,
            )
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness")


def test_another_proposal_is_refused_while_the_person_waits_for_as_many_as_they_have_slots(
    db_sf: sessionmaker, tmp_path: Path
) -> None:
    """Each proposal is a designer call and a sandboxed measurement, made later by a worker: the request counts the
    person's proposals in flight (runs queued for one) against their slots, and the machine's."""
    api = make_api(db_sf, tmp_path, check_slots_per_user=1, check_slots_total=2)
    alice, bob = api.user("alice"), api.user("bob")
    run_id = proposed(api, alice)
    waiting = api.client.post(f"{API}/tasks", json=BACKWARDS, headers=alice)  # queued: its proposal is in flight
    assert waiting.status_code == 201
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"repropose": True}, headers=alice)
    assert res.status_code == 429, res.text
    assert "you already wait for 1 fitness proposals" in res.json()["error"]["message"]
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness")

    assert api.client.post(f"{API}/runs/{waiting.json()['run_id']}/cancel", headers=alice).status_code == 200
    bobs = [api.client.post(f"{API}/tasks", json=BACKWARDS, headers=bob).json()["run_id"] for _ in range(2)]
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"repropose": True}, headers=alice)
    assert res.status_code == 429, res.text
    assert "the server is already making 2 fitness proposals" in res.json()["error"]["message"]
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness")

    for bobs_run in bobs:
        assert api.client.post(f"{API}/runs/{bobs_run}/cancel", headers=bob).status_code == 200
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"repropose": True}, headers=alice)
    assert res.status_code == 200 and res.json()["status"] == "queued", res.text


@pytest.mark.slow
def test_another_proposal_through_the_dashboard_is_capped_too(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, check_slots_per_user=1, check_slots_total=4)
    browser = signed_in(api, "alice")
    run_id = proposal_run(api, browser)
    assert browser.post("/tasks/new", {**TASK_FORM, "fitness_kind": "propose"}).status_code == 303
    r = browser.post(f"/runs/{run_id}/fitness/repropose", {"note": "higher"})
    assert r.status_code == 429 and "you already wait for 1 fitness proposals" in r.text
    assert proposals_and_status(api, run_id) == (["proposed"], "waiting_fitness")


IDLE_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
)


@pytest.mark.postgres
@pytest.mark.slow
def test_an_edit_runs_its_sandbox_job_outside_any_open_transaction(tmp_path: Path) -> None:
    """While the edited program is measured (up to two minutes), no connection of the service sits idle in a
    transaction: a real PostgreSQL database (not the tests' rolled-back one), watched from outside."""
    with fresh_postgres_database("rs_gateway") as url:
        engine = make_engine(url)
        watcher = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            # two slots on the machine, one per user: probing a free slot below never takes the edit's last one
            api = make_api(sessionmaker(bind=engine, expire_on_commit=False), tmp_path, check_slots_per_user=1)
            alice = api.user("alice")
            run_id = proposed(api, alice)
            answer: list[int] = []
            edit = threading.Thread(
                target=lambda: answer.append(
                    api.client.post(
                        f"{API}/runs/{run_id}/fitness", json={"source": JUMP_HIGH}, headers=alice
                    ).status_code
                )
            )
            edit.start()
            slots = [
                sandbox_jobs.slots_dir(api.settings) / f"all-{i}.lock" for i in range(api.settings.check_slots_total)
            ]
            seen: list[int] = []  # idle-in-transaction connections, counted while the job surely ran
            deadline = time.monotonic() + 120
            with watcher.connect() as conn:
                while edit.is_alive() and time.monotonic() < deadline:
                    if any(held(slot) for slot in slots):
                        idle = conn.execute(IDLE_IN_TRANSACTION).scalar()
                        if any(held(slot) for slot in slots):  # held before and after the query: the job ran
                            seen.append(int(idle or 0))
                    time.sleep(0.01)
            edit.join(timeout=180)
            assert seen, "the edit never took a slot of the machine"
            assert set(seen) == {0}, f"connections sat idle in a transaction while the sandbox job ran: {seen}"
            assert answer == [200]
        finally:
            engine.dispose()
            watcher.dispose()
