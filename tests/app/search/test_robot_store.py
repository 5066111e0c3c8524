"""Users' robots in the database and each process's registry: a process registers a robot from its stored files
(a worker that never saw the upload included), keeps it while its content hash holds, registers it again when it
changed, forgets it when it was removed; and the steps of the search register their run's robot first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
import envs
from app.db import session_scope
from app.db.models import Robot
from app.search.service import create_task
from tests.support.db import make_settings
from tests.support.dispatch import RecordingDispatcher
from tests.support.robots import QUADRUPED_XML, store
from tests.support.tasks import tiny_spec
from workers.engine.robot import CompiledRobot, compile_robot

NAME = "cached_quadruped"


@pytest.fixture(scope="module")
def compiled() -> CompiledRobot:
    return compile_robot(NAME, {"quadruped.xml": QUADRUPED_XML}, {"episode_steps": 200})


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    robots.forget(NAME)
    yield
    robots.forget(NAME)


def _queries(sf: sessionmaker, fn) -> int:
    """How many SELECT statements ``fn(session)`` sends (a test on PostgreSQL adds savepoints of its own)."""
    sent: list[str] = []
    with session_scope(sf) as s:
        engine = s.get_bind()
        listener = lambda *args: sent.append(args[2])  # noqa: E731 (before_cursor_execute's statement)
        event.listen(engine, "before_cursor_execute", listener)
        try:
            fn(s)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    return sum(statement.lstrip().upper().startswith("SELECT") for statement in sent)


def test_a_process_registers_a_robot_from_the_database_once_per_content(db_sf: sessionmaker, compiled) -> None:
    store(db_sf, compiled, owner_id=None)
    assert NAME not in envs.user_names()  # this process never compiled or registered it: another host's upload
    assert _queries(db_sf, lambda s: robots.register_from_db(s, NAME)) >= 2  # the hash, then the row and files
    spec = envs.get_spec(NAME)
    assert spec.robot.settings.episode_steps == 200 and dict(spec.robot.files) == {"quadruped.xml": QUADRUPED_XML}
    # unchanged: one small query, the same env
    assert _queries(db_sf, lambda s: robots.register_from_db(s, NAME)) == 1
    assert envs.get_spec(NAME) is spec
    # changed (removed and added again with other settings): registered again
    with session_scope(db_sf) as s:
        s.delete(s.scalar(select(Robot).where(Robot.name == NAME)))
    changed = CompiledRobot(
        NAME, compiled.files, compiled.root_file, {**compiled.settings, "episode_steps": 300}, compiled.description
    )
    store(db_sf, changed, owner_id=None)
    with session_scope(db_sf) as s:
        assert robots.register_from_db(s, NAME)
    assert envs.get_spec(NAME).robot.settings.episode_steps == 300
    # removed: forgotten here at the next look
    with session_scope(db_sf) as s:
        s.delete(s.scalar(select(Robot).where(Robot.name == NAME)))
    with session_scope(db_sf) as s:
        assert not robots.register_from_db(s, NAME)
    assert NAME not in envs.user_names()


def test_a_built_in_env_costs_no_query(db_sf: sessionmaker) -> None:
    assert _queries(db_sf, lambda s: robots.register_from_db(s, "Ant-v5")) == 0


def test_a_step_of_the_search_registers_its_runs_robot_first(db_sf: sessionmaker, compiled, tmp_path) -> None:
    store(db_sf, compiled, owner_id=None)
    with session_scope(db_sf) as s:
        _, run = create_task(
            s,
            spec=tiny_spec(env=NAME),
            owner_id=None,
            settings=make_settings(tmp_path),
            dispatcher=RecordingDispatcher(),
        )
        run_id = run.id
    robots.forget(NAME)  # a worker on another host
    robots.register_env_of(db_sf, run_id=run_id)
    assert envs.get_spec(NAME).robot is not None
