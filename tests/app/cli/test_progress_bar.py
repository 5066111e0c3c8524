"""`rewardsmith run` shows one progress bar per run and a line per candidate only when its outcome changes: not a
line per progress report, and nothing repeated while the best candidate is re-trained on its final seeds."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy.orm import sessionmaker

from app.cli.progress import RunBar
from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Run, Training, utcnow
from tests.app.api.harness import make_api, seed_finished_run


@dataclass
class Watched:
    """The three things the bar reads of a ``LocalRun``."""

    sf: sessionmaker
    run_id: int
    settings: Settings


def test_one_bar_per_run_and_a_line_per_change_of_outcome(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path)
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        run.status, run.phase, run.finished_at, run.started_at = "running", "search", None, utcnow()
        c = s.get(Candidate, seeded.candidate_id)
        c.status, c.fitness = "training", None
        t = s.get(Training, seeded.training_id)
        t.status, t.result = "running", {"progress": {"timesteps": 512, "total": 2048}}
    out = io.StringIO()
    bar = RunBar(Console(file=out, width=200, force_terminal=False))
    local = Watched(api.sf, seeded.run_id, api.settings)

    bar.on_tick(local)
    for steps in (1024, 1536, 2048):  # progress reports: the bar moves, no line is printed
        with session_scope(api.sf) as s:
            s.get(Training, seeded.training_id).result = {"progress": {"timesteps": steps, "total": 2048}}
        bar.on_tick(local)
    with session_scope(api.sf) as s:
        s.get(Training, seeded.training_id).status = "ok"
        s.get(Training, seeded.training_id).result = {"timesteps": 2048}
        c = s.get(Candidate, seeded.candidate_id)
        c.status, c.fitness = "trained", 12.5
        run = s.get(Run, seeded.run_id)
        run.phase = "final"
        s.add(
            Training(
                candidate_id=c.id, run_id=run.id, purpose="final", timesteps=2048, seed=7, status="running",
                attempts=1, result={"progress": {"timesteps": 1024, "total": 2048}},
            )
        )  # fmt: skip
    for _ in range(3):  # the final re-training: the candidate's outcome does not change
        bar.on_tick(local)
    bar.stop()

    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    mine = [line for line in lines if f"candidate {seeded.candidate_id} " in line]
    assert mine == [
        f"  iteration 1 · candidate {seeded.candidate_id} [llm]: training",
        f"  iteration 1 · candidate {seeded.candidate_id} [llm]: trained, fitness 12.5",
    ]
    bars = [line for line in lines if line.startswith(f"run {seeded.run_id}")]
    assert len(bars) == 1, lines  # one bar, drawn once at the end on a console that is not a terminal
    assert re.search(r"3,072/3,072 steps · 1/2 trainings · \d+ s elapsed", bars[0]), bars[0]  # a slow machine: 1 s
