"""Every sandbox job a person can start goes through this gateway: a slot per user and per machine, and no open
database transaction while it runs.

A person starts sandbox work three ways:

- the dashboard's "check my program": a static check and a dry run (``check_for_person``);
- an edited fitness program, from the API (``POST /runs/{id}/fitness`` with ``source``), the dashboard's edit form
  or ``rewardsmith approve --fitness-file``: a dry run and a measurement on random-policy episodes
  (``measure_for_person``);
- a robot added from the API, the dashboard or ``rewardsmith envs add``: its MJCF compiled and measured, then its
  initial pose drawn, each in a sandboxed child (``compile_robot_for_person``);
- a request for another fitness proposal: the proposing step measures the new program later, in a worker
  (``admit_reproposal`` counts those in flight against the same slots).

The first three run in the caller's thread: the caller's transaction is committed first (so that no connection sits
idle in a transaction, holding locks, for as long as the job runs), then a slot is taken, or RateLimited (429)
says when to try again. The search's own jobs (a worker's dry runs, trainings and measurements) are bounded by the
workers and do not come here.
"""

from __future__ import annotations

import fcntl
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import app.search.records.robots as robots
import envs
from app.config import Settings
from app.db.locks import hold_user
from app.db.models import FitnessProposal, Run, Task, utcnow
from app.errors import Conflict, InvalidInput, RateLimited
from app.search.rules.fitness import FitnessKind
from app.search.rules.options import FITNESS_PROGRAM_CHARS
from app.search.rules.states import Origin, ProposalStatus, RunStatus
from workers.engine.evaluate import sandbox_check, sandbox_measure
from workers.engine.picture import PictureFailed, render_robot
from workers.engine.robot import ROBOT_LIMITS, CompiledRobot, compile_robot
from workers.sandbox.runner import Outcome, SandboxResult

MEASURE_EPISODES = 5
"""Random-policy episodes a fitness program is measured on."""
MEASURE_WALL_SECONDS = 120.0
"""Wall-clock limit of one fitness program's sandboxed dry run and measurement."""


class ProgramKind(StrEnum):
    """What a checked program defines."""

    REWARD = "reward"
    """``compute_reward(state, action)``."""
    FITNESS = "fitness"
    """``compute_fitness(traj)``."""


@dataclass
class Measured:
    """A fitness program after the static check, the sandboxed dry run and the measurement: proposed (it passed)
    or broken, with why."""

    status: ProposalStatus
    error: str | None = None
    dry_run: dict[str, Any] = field(default_factory=dict)
    measurement: dict[str, Any] = field(default_factory=dict)


def measure(env: str, source: str | None, settings: Settings, *, max_steps: int | None) -> Measured:
    """The job itself: ``source`` checked like every program, dry-run, then measured on random-policy episodes, all
    in the sandbox. A person's request reaches it only through ``measure_for_person``."""
    if source is None:
        return Measured(ProposalStatus.BROKEN, "the answer held no program")
    if len(source) > FITNESS_PROGRAM_CHARS:
        return Measured(ProposalStatus.BROKEN, f"the program is longer than {FITNESS_PROGRAM_CHARS:,} characters")
    limits = settings.sandbox_limits(wall_seconds=MEASURE_WALL_SECONDS)
    res = sandbox_measure(env, source, limits, episodes=MEASURE_EPISODES, max_steps=max_steps)
    if res.outcome != Outcome.OK:
        return Measured(ProposalStatus.BROKEN, res.error or f"the checks ended with '{res.outcome}'")
    return Measured(ProposalStatus.PROPOSED, None, res.payload.get("report", {}), res.payload.get("measurement", {}))


@contextmanager
def _slot(directory: Path, name: str, count: int) -> Iterator[bool]:
    """Hold one of ``count`` slots called ``name`` while the block runs (True), or none is free (False).

    A slot is an exclusive ``flock`` on a file under ``directory``: it is shared by every thread and process on the
    machine (several API processes included) and is released by the kernel if its holder dies."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        fd = os.open(directory / f"{name}-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    yield False


def slots_dir(settings: Settings) -> Path:
    """Where the slots' lock files are (``data_dir/locks/checks``)."""
    return settings.data_dir / "locks" / "checks"


@contextmanager
def _person_slots(session: Session, settings: Settings, user_id: int | None, wait: int) -> Iterator[None]:
    """End the caller's transaction, then hold a slot of the user's and one of the machine's while the block runs;
    RateLimited when either has none free. ``user_id`` None is the local command line."""
    session.commit()  # nothing may sit idle in a transaction for as long as a sandbox job runs
    owner = f"user-{user_id}" if user_id is not None else "command-line"
    with ExitStack() as held:
        if not held.enter_context(_slot(slots_dir(settings), owner, settings.check_slots_per_user)):
            raise RateLimited(
                f"you already have {settings.check_slots_per_user} program checks running (the most at once); "
                f"wait for one to finish (at most {wait} s) and try again",
                retry_after=wait,
            )
        if not held.enter_context(_slot(slots_dir(settings), "all", settings.check_slots_total)):
            raise RateLimited(
                f"the server is already running {settings.check_slots_total} program checks (the most at once); "
                f"try again in {wait} s",
                retry_after=wait,
            )
        yield


def check_for_person(
    session: Session, *, settings: Settings, user_id: int | None, env: str, source: str, kind: ProgramKind
) -> SandboxResult:
    """Static check and dry run of ``source`` on ``env`` for a person (the dashboard's check), on the short wall
    clock of ``settings.check_wall_seconds``.

    InvalidInput for an unknown env; RateLimited (429) when the user, or the machine, already runs as many jobs as
    the settings allow."""
    try:
        robots.usable_env(session, name=env, viewer=robots.viewer_of(session, user_id))
    except envs.UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    with _person_slots(session, settings, user_id, math.ceil(settings.check_wall_seconds)):
        return sandbox_check(env, source, kind, settings.sandbox_limits(wall_seconds=settings.check_wall_seconds))


def measure_for_person(
    session: Session, *, settings: Settings, user_id: int | None, env: str, source: str, max_steps: int | None
) -> Measured:
    """``measure`` for a person (an edited fitness program); RateLimited (429) when no slot is free."""
    robots.register_from_db(session, env)  # the run's env, as its task named it
    with _person_slots(session, settings, user_id, math.ceil(MEASURE_WALL_SECONDS)):
        return measure(env, source, settings, max_steps=max_steps)


@dataclass(frozen=True)
class RobotCompiled:
    """A robot the sandbox accepted, with the picture of its initial pose (or why none could be drawn)."""

    compiled: CompiledRobot
    picture: bytes | None
    picture_error: str | None


def compile_robot_for_person(
    session: Session,
    *,
    settings: Settings,
    user_id: int | None,
    name: str,
    files: dict[str, bytes],
    robot_settings: dict[str, Any],
    root_file: str | None,
) -> RobotCompiled:
    """Compile and measure an uploaded robot in the sandbox, then draw its initial pose there, holding one slot of
    the user's and one of the machine's (RateLimited, 429, when none is free); ``envs.RobotRefused`` says why a
    robot was refused. A picture that cannot be drawn (no offscreen renderer on this machine) refuses nothing."""
    limits = replace(ROBOT_LIMITS, wall_seconds=min(ROBOT_LIMITS.wall_seconds, settings.sandbox_wall_seconds))
    with _person_slots(session, settings, user_id, math.ceil(limits.wall_seconds)):
        compiled = compile_robot(name, files, robot_settings, root_file=root_file, limits=limits)
        try:
            return RobotCompiled(compiled, render_robot(compiled.payload()), None)
        except PictureFailed as e:
            return RobotCompiled(compiled, None, str(e))


def _proposals_made(session: Session, run: Run) -> int:
    """The run's proposing rounds so far: each round's first draft (an LLM's repair goes with its round, a person's
    edit is not a proposal)."""
    rounds = select(func.count(FitnessProposal.id)).where(
        FitnessProposal.run_id == run.id, FitnessProposal.origin.not_in([Origin.REPAIR, Origin.PERSON])
    )
    return session.scalar(rounds) or 0


def _reproposal_rate(session: Session, user_id: int, settings: Settings) -> None:
    """RateLimited when the person asked for another proposal ``fitness_reproposals_per_hour`` times in the last
    hour: each request set aside one round's first draft (and its repair), decided by them."""
    hold_user(session, user_id)  # counted and then recorded as one step, like the task rate
    since = utcnow() - timedelta(hours=1)
    asked = select(FitnessProposal.decided_at).where(
        FitnessProposal.decided_by_id == user_id,
        FitnessProposal.status == ProposalStatus.REJECTED,
        FitnessProposal.origin.not_in([Origin.REPAIR, Origin.PERSON]),
        FitnessProposal.decided_at >= since,
    )
    times = sorted(t for t in session.scalars(asked) if t is not None)
    limit = settings.fitness_reproposals_per_hour
    if len(times) >= limit:
        wait = max(1, math.ceil((times[-limit] - since).total_seconds())) if limit else 3600
        raise RateLimited(
            f"you asked for another fitness proposal {len(times)} times in the last hour, the most allowed "
            f"(REWARDSMITH_FITNESS_REPROPOSALS_PER_HOUR = {limit}); try again in {math.ceil(wait / 60)} minute(s), "
            'or approve the proposal or send your own program ({"source": "..."}) now',
            retry_after=wait,
        )


def admit_reproposal(session: Session, *, run: Run, user_id: int | None, settings: Settings) -> None:
    """Conflict (409) when the run has had ``fitness_proposals_per_run`` proposals; RateLimited (429) when the person
    asked for too many in the last hour, or the run's owner, or the machine, already waits for as many fitness
    proposals as there are slots: each is a designer call and a sandboxed measurement, started by a person's request.
    ``user_id`` None is the local command line (no rate per person)."""
    made, cap = _proposals_made(session, run), settings.fitness_proposals_per_run
    if made >= cap:
        raise Conflict(
            f"run {run.id} has had {made} fitness proposals, the most one run may have "
            f"(REWARDSMITH_FITNESS_PROPOSALS_PER_RUN = {cap}); approve one, or send your own program "
            '({"source": "..."}, or the edit form), or submit the task again with other words'
        )
    if user_id is not None:
        _reproposal_rate(session, user_id, settings)
    proposing = (
        select(func.count(Run.id))
        .join(Task, Run.task_id == Task.id)
        .where(Run.id != run.id, Run.status == RunStatus.QUEUED, Task.fitness_name == FitnessKind.PROPOSE)
    )
    wait = math.ceil(MEASURE_WALL_SECONDS)
    mine = session.scalar(proposing.where(Task.owner_id == run.task.owner_id)) or 0
    if mine >= settings.check_slots_per_user:
        raise RateLimited(
            f"you already wait for {mine} fitness proposals (the most at once is {settings.check_slots_per_user}); "
            "decide on one of them, or try again in a few minutes",
            retry_after=wait,
        )
    if (session.scalar(proposing) or 0) >= settings.check_slots_total:
        raise RateLimited(
            f"the server is already making {settings.check_slots_total} fitness proposals (the most at once); "
            f"try again in {wait} s",
            retry_after=wait,
        )
