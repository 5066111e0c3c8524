"""What `rewardsmith run` shows while a run works: one rich progress bar per run (steps trained out of the run's
budget, trainings done, elapsed time and the ETA of ``app.search.records.progress``), and one line per candidate
each time its outcome changes (trained with its fitness, failed with why), never one per progress report: a
candidate re-trained on final seeds is not printed again."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from sqlalchemy.orm import sessionmaker

from app.cli.common import shown
from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Run
from app.search.records.progress import RunProgress, duration, run_progress
from app.search.rules.states import CandidateStatus


class Watched(Protocol):
    """What the bar reads of a run worked off in this process (``LocalRun``)."""

    sf: sessionmaker
    run_id: int
    settings: Settings


def figures(p: RunProgress) -> str:
    """The figures beside the bar: trainings, elapsed time, time left, tokens."""
    parts = [f"{p.trainings_done}/{p.trainings_total} trainings", f"{duration(p.elapsed_seconds)} elapsed"]
    if p.eta_seconds is not None:
        parts.append(f"about {duration(p.eta_seconds)} left")
    if p.tokens is not None:
        parts.append(f"{p.tokens:,} tokens" + (f" (${p.cost:.4f})" if p.cost is not None else ""))
    return " · ".join(parts)


def candidate_line(c: Candidate) -> str:
    where = f"iteration {c.iteration.index + 1}" if c.iteration is not None else "baseline"
    fit = f", fitness {c.fitness:.4g}" if c.fitness is not None else ""
    note = f" — {c.error.splitlines()[0][:160]}" if c.error and c.status != CandidateStatus.TRAINED else ""
    return shown(f"  {where} · candidate {c.id} [{c.origin}]: {c.status}{fit}{note}")


class RunBar:
    """One progress bar for one run; ``on_tick`` is the run's tick callback, ``stop`` ends the bar."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps · {task.fields[figures]}"),
            console=console,
            auto_refresh=console.is_terminal,
        )
        self.task: TaskID | None = None
        self.seen: dict[int, tuple] = {}

    def on_tick(self, local: Watched) -> None:
        lines = []
        with session_scope(local.sf) as s:
            run = s.get(Run, local.run_id)
            if run is None:
                return
            p = run_progress(s, run, local.settings)
            for c in s.query(Candidate).filter(Candidate.run_id == local.run_id).order_by(Candidate.id):
                key = (c.status, c.fitness, c.error)  # not the training's progress: the bar shows that
                if self.seen.get(c.id) != key:
                    self.seen[c.id] = key
                    lines.append(candidate_line(c))
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(f"run {local.run_id}", total=max(1, p.timesteps_total), figures="")
        for line in lines:
            self.progress.console.print(line, highlight=False)
        self.progress.update(self.task, total=max(1, p.timesteps_total), completed=p.timesteps_done, figures=figures(p))

    def stop(self) -> None:
        """Draw the bar a last time and end it (a console that is not a terminal gets only this drawing)."""
        if self.task is not None:
            self.progress.stop()
            self.task = None
