"""Learning curves as the pages draw them, while a training runs and after: a candidate's own charts, and every
candidate of a run on one chart, with the baselines' fitness drawn as reference lines.

The checkpoints come from the training's row: a running training's worker writes each one as it happens
(``app.search.machine.training.live_result``), a finished one holds its result's. Per-step rewards exist from the
first checkpoint at any budget; an episode return only once an episode ended, and the chart says why it is empty.
"""

from __future__ import annotations

from app.dashboard.plots import Reference, Series, line_plot
from app.db.models import Candidate, Run
from app.search.records.candidates import watched_training
from app.search.rules.states import CandidateStatus, Origin, TrainingStatus
from workers.engine.result import Checkpoint, TrainingResult

STEPS = "training steps"


def baseline_references(run: Run) -> list[Reference]:
    """The fitness each trained baseline of ``run`` reached: the lines a candidate's fitness is judged against."""
    names = {Origin.BASELINE_REFERENCE: "reference reward", Origin.BASELINE_SPARSE: "fitness as reward"}
    return [
        Reference(names.get(Origin(c.origin), str(c.origin)), c.fitness)
        for c in run.candidates
        if c.origin.is_baseline and c.fitness is not None
    ]


def _mean(stats: object) -> float | None:
    return stats.get("mean") if isinstance(stats, dict) else None


def _per_step(cps: list[Checkpoint], key: str) -> list[tuple[float, float | None]]:
    return [(c["timesteps"], _mean(c.get(key))) for c in cps]


def candidate_plots(result: TrainingResult, *, references: list[Reference] | None = None) -> list[str]:
    """The charts of one training: fitness (against ``references``), reward per step (this reward and the env's
    own), episode return once an episode has ended, and each component's mean per step."""
    cps = list(result.get("checkpoints") or [])
    if not cps:
        return []
    plots = [
        line_plot(
            [Series("fitness", [(c["timesteps"], c.get("fitness")) for c in cps])],
            title="fitness over training",
            x_label=STEPS,
            y_label="fitness",
            references=references or [],
        ),
        line_plot(
            [
                Series("this reward", _per_step(cps, "reward")),
                Series("env's own reward", _per_step(cps, "env_reward"), dashed=True),
            ],
            title="reward per step over training",
            x_label=STEPS,
            y_label="mean reward per step",
        ),
    ]
    if any(c.get("episode_return") is not None for c in cps):
        rets = [
            Series("this reward", [(c["timesteps"], c.get("episode_return")) for c in cps]),
            Series("env's own reward", [(c["timesteps"], c.get("episode_env_return")) for c in cps], dashed=True),
        ]
        plots.append(line_plot(rets, title="episode return over training", x_label=STEPS, y_label="return"))
    else:
        n_envs = (result.get("ppo") or {}).get("n_envs")
        why = f" each of the {n_envs} envs has run about {cps[-1]['timesteps'] // n_envs:,} steps" if n_envs else ""
        plots.append(
            '<div class="plot-empty">episode return over training: no episode has ended yet'
            f"{(';' + why) if why else ''}. The reward per step above measures the same learning.</div>"
        )
    names = list(dict.fromkeys(name for c in cps for name in (c.get("components") or {})))
    if names:
        series = [
            Series(name, [(c["timesteps"], _mean((c.get("components") or {}).get(name))) for c in cps])
            for name in names
        ]
        plots.append(
            line_plot(series, title="reward components (mean per step)", x_label=STEPS, y_label="per-step value")
        )
    return plots


def _order(run: Run) -> list[Candidate]:
    """The run's designed candidates that have checkpoints, the ones to draw first first: the best, those training
    now, then the newest."""
    designed = [c for c in run.candidates if not c.origin.is_baseline]

    def rank(c: Candidate) -> tuple[int, int]:
        if c.id == run.best_candidate_id:
            return (0, 0)
        if c.status == CandidateStatus.TRAINING:
            return (1, -c.id)
        return (2, -c.id)

    return sorted(designed, key=rank)


def run_fitness_curves(run: Run) -> str:
    """Every candidate's fitness over its training on one chart (the best, those training now and the newest first,
    ``MAX_SERIES`` at most), the baselines' fitness drawn across it."""
    series = []
    for c in _order(run):
        t = watched_training(c)
        cps = list(((t.result or {}) if t is not None else {}).get("checkpoints") or [])
        if not cps:
            continue
        live = " (training)" if t is not None and t.status == TrainingStatus.RUNNING else ""
        best = " best" if c.id == run.best_candidate_id else ""
        it = f" it {c.iteration.index + 1}" if c.iteration is not None else ""
        series.append(Series(f"#{c.id}{it}{best}{live}", [(cp["timesteps"], cp.get("fitness")) for cp in cps]))
    return line_plot(
        series,
        title=f"fitness ({run.task.fitness_name}) over training, each candidate",
        x_label=STEPS,
        y_label=run.task.fitness_name,
        references=baseline_references(run),
    )


def overlay(candidates: list[Candidate]) -> str:
    """The fitness curves of ``candidates`` (of one run or of several) on one chart, each named by its run and id."""
    series = []
    for c in candidates:
        t = watched_training(c)
        cps = list(((t.result or {}) if t is not None else {}).get("checkpoints") or [])
        series.append(Series(f"run {c.run_id} #{c.id}", [(cp["timesteps"], cp.get("fitness")) for cp in cps]))
    one_run = len({c.run_id for c in candidates}) == 1  # baselines of different runs are not one yardstick
    return line_plot(
        series,
        title="fitness over training, side by side",
        x_label=STEPS,
        y_label="fitness",
        references=baseline_references(candidates[0].run) if candidates and one_run else [],
    )
