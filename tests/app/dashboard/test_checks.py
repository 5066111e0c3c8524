"""The interactive fitness check runs a program in the sandbox: briefly (a short wall clock, not a training's hour)
and few at a time (per user and on the machine), with a 429 that says so when over the cap."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.errors import RateLimited
from app.search.decisions import sandbox_jobs
from app.search.service import ProgramKind, check_for_person
from tests.app.api.harness import make_api
from tests.app.dashboard.harness import log_in
from tests.support.db import make_settings

ENDLESS = "def compute_fitness(traj):\n    x = 0\n    while True:\n        x = x + 1\n    return 1.0\n"
GOOD = "import numpy as np\n\ndef compute_fitness(traj):\n    return float(np.max(traj.z_position))\n"


def held(lock: Path) -> bool:
    """Whether someone holds the slot ``lock`` (probed without waiting)."""
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.slow
def test_an_endless_program_is_stopped_after_the_short_wall_clock(sqlite_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(sqlite_sf, tmp_path, check_wall_seconds=5.0)
    api.user("alice")
    browser = log_in(api, "alice")
    started = time.monotonic()
    r = browser.htmx("POST", "/ui/check-fitness", data={"env": "HalfCheetah-v5", "fitness_program": ENDLESS})
    took = time.monotonic() - started
    assert r.status_code == 200 and "timeout" in r.text and "5 s" in r.text, r.text
    assert took < 15, f"the check held the request {took:.0f} s"
    ok = browser.htmx("POST", "/ui/check-fitness", data={"env": "HalfCheetah-v5", "fitness_program": GOOD})
    assert ok.status_code == 200 and "Accepted" in ok.text, ok.text


@pytest.mark.slow
def test_checks_are_capped_per_user_and_on_the_machine(sqlite_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(sqlite_sf, tmp_path, check_wall_seconds=4.0, check_slots_per_user=1, check_slots_total=2)
    api.user("alice")
    api.user("bob")
    api.user("carol")
    alice, bob, carol = log_in(api, "alice"), log_in(api, "bob"), log_in(api, "carol")
    locks = api.settings.data_dir / "locks" / "checks"
    form = {"env": "HalfCheetah-v5", "fitness_program": ENDLESS}
    answers: dict[str, int] = {}

    def run(name: str, browser) -> None:
        answers[name] = browser.htmx("POST", "/ui/check-fitness", data=form).status_code

    first = threading.Thread(target=run, args=("alice", alice))
    first.start()
    deadline = time.monotonic() + 10
    while not held(locks / "user-1-0.lock") and time.monotonic() < deadline:
        time.sleep(0.02)
    r = alice.htmx("POST", "/ui/check-fitness", data={"env": "HalfCheetah-v5", "fitness_program": GOOD})
    assert r.status_code == 429, r.text
    assert "you already have 1 program checks running" in r.text and r.headers["retry-after"] == "4"
    second = threading.Thread(target=run, args=("bob", bob))  # another user still gets a slot ...
    second.start()
    while not held(locks / "user-2-0.lock") and time.monotonic() < deadline:
        time.sleep(0.02)
    r = carol.htmx("POST", "/ui/check-fitness", data=form)  # ... until the machine's slots are all taken
    assert r.status_code == 429 and "the server is already running 2 program checks" in r.text, r.text
    first.join()
    second.join()
    assert answers == {"alice": 200, "bob": 200}
    r = carol.htmx("POST", "/ui/check-fitness", data={"env": "HalfCheetah-v5", "fitness_program": GOOD})
    assert r.status_code == 200 and "Accepted" in r.text, "slots are given back when a check ends"


def test_the_cap_holds_for_every_caller(sqlite_sf: sessionmaker, tmp_path: Path) -> None:
    """The gateway itself refuses, whoever calls it (another API process, a future API route)."""
    settings = make_settings(tmp_path, check_slots_per_user=1, check_slots_total=1)
    with session_scope(sqlite_sf) as s:
        with sandbox_jobs._slot(sandbox_jobs.slots_dir(settings), "all", 1) as got:
            assert got
            with pytest.raises(RateLimited, match="the server is already running 1 program checks"):
                check_for_person(
                    s, settings=settings, user_id=7, env="HalfCheetah-v5", source=GOOD, kind=ProgramKind.FITNESS
                )
        res = check_for_person(
            s, settings=settings, user_id=7, env="HalfCheetah-v5", source=GOOD, kind=ProgramKind.FITNESS
        )
        assert res.outcome == "ok"
