"""`rewardsmith run`: a whole search from the command line, in this process."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from app.cli.common import console, err, fail, read_text, shown
from app.config import get_settings
from app.db import session_factory, session_scope
from app.db.migrate import upgrade
from app.db.models import Candidate, Run
from app.errors import InvalidInput
from app.search.factory import designer_factory
from app.search.local import LocalDispatcher
from app.search.report import designer_label, run_dict
from app.search.service import TaskSpec, create_task
from app.search.states import CandidateStatus, RunStatus, TrainingStatus


def run(
    env: str = typer.Option(..., "--env", help="Env name, e.g. HalfCheetah-v5."),
    task: str = typer.Option(..., "--task", help="The behaviour in words, e.g. 'make the cheetah run backwards'."),
    out: Path = typer.Option(..., "--out", help="Directory for run.json and best_reward.py."),
    fitness: str | None = typer.Option(None, "--fitness", help="Built-in fitness metric (default forward_distance)."),
    fitness_file: Path | None = typer.Option(None, "--fitness-file", help="A fitness program instead of a metric."),
    designer: str | None = typer.Option(None, "--designer", help="llm or offline (default: llm when configured)."),
    iterations: int = typer.Option(3, "--iterations", help="Rounds of design, training and reflection."),
    samples: int = typer.Option(4, "--samples", help="Candidates per round (K)."),
    timesteps: int = typer.Option(50_000, "--timesteps", help="PPO steps per candidate."),
    seed: int = typer.Option(0, "--seed"),
    successive_halving: bool = typer.Option(
        False, "--successive-halving", help="Screen all K on a fraction, continue the better half."
    ),
    final_seeds: int = typer.Option(3, "--final-seeds", help="Extra seeds to re-evaluate the best on (0: none)."),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Train the reference and sparse rewards for a normalized score."
    ),
    critic_review: bool = typer.Option(
        False, "--critic-review", help="Let the LLM review each candidate before training."
    ),
    eval_episodes: int = typer.Option(5, "--eval-episodes", help="Deterministic episodes per final evaluation."),
    episode_steps: int | None = typer.Option(
        None, "--episode-steps", help="Cap on episode length (default: the env's 1000)."
    ),
    parallel: int | None = typer.Option(None, "--parallel", help="Trainings at once (default: CPU cores)."),
) -> None:
    """Search for a reward: K candidates × N iterations, trained in the sandbox; writes run.json and best_reward.py."""
    if fitness and fitness_file:
        fail("give either --fitness NAME or --fitness-file FILE, not both.")
    settings = get_settings()
    fitness_value = read_text(fitness_file, "fitness") if fitness_file else (fitness or "forward_distance")
    train_opts = {"eval_episodes": eval_episodes}
    if episode_steps:
        train_opts["episode_steps"] = episode_steps
    spec = TaskSpec(
        env=env,
        description=task,
        fitness=fitness_value,
        designer=designer,
        iterations=iterations,
        samples=samples,
        timesteps=timesteps,
        seed=seed,
        options={
            "successive_halving": successive_halving,
            "final_seeds": final_seeds,
            "baselines": baselines,
            "critic_review": critic_review,
            "train": train_opts,
        },
    )
    upgrade(settings.resolved_database_url)
    sf = session_factory(settings.resolved_database_url)
    dispatcher = LocalDispatcher(sf, settings, designer_factory(sf, settings), max_parallel=parallel)
    try:
        with session_scope(sf) as s:
            _t, r = create_task(s, spec=spec, owner_id=None, settings=settings, dispatcher=dispatcher)
            run_id = r.id
            label = designer_label(r, settings.llm_model)
    except InvalidInput as e:
        fail(f"{e.field}: {e.message}" if e.field else e.message)
    console.print(
        f"run {run_id}: {shown(env)}, '{shown(task)}', {iterations} iterations × {samples} candidates × {timesteps:,} steps; "
        f"designer: [bold]{label}[/]",
        highlight=False,
    )
    seen: dict[int, tuple] = {}

    def on_tick() -> None:
        with session_scope(sf) as s:
            for c in s.query(Candidate).filter(Candidate.run_id == run_id).order_by(Candidate.id):
                progress = next(
                    (
                        t.result.get("progress")
                        for t in reversed(c.trainings)
                        if t.status == TrainingStatus.RUNNING and t.result
                    ),
                    None,
                )
                key = (c.status, c.fitness, progress.get("timesteps") if progress else None)
                if seen.get(c.id) == key:
                    continue
                seen[c.id] = key
                where = f"iteration {c.iteration.index + 1}" if c.iteration is not None else "baseline"
                fit = f", fitness {c.fitness:.4g}" if c.fitness is not None else ""
                prog = f" ({progress['timesteps']:,}/{progress['total']:,} steps)" if progress else ""
                note = f" — {c.error.splitlines()[0][:160]}" if c.error and c.status != CandidateStatus.TRAINED else ""
                console.print(
                    shown(f"  {where} · candidate {c.id} [{c.origin}]: {c.status}{prog}{fit}{note}"), highlight=False
                )

    status = dispatcher.run_until_settled(run_id, on_tick=on_tick)
    out.mkdir(parents=True, exist_ok=True)
    with session_scope(sf) as s:
        finished = s.get(Run, run_id)
        assert finished is not None
        doc = run_dict(s, finished, model=settings.llm_model)
    (out / "run.json").write_text(json.dumps(doc, indent=2, default=str))
    best = doc["best_candidate"]
    if best and best.get("code"):
        (out / "best_reward.py").write_text(best["code"])
    final = doc["final"] or {}
    colour = "green" if status == RunStatus.SUCCEEDED else "red"
    console.print(f"run {run_id}: [{colour}]{status}[/]" + (f" — {shown(doc['error'])}" if doc["error"] else ""))
    if best:
        console.print(
            f"best candidate {best['id']}: fitness {best['fitness']:.4g}"
            + (
                f"; over {len(final['fitness_per_seed'])} seeds {final['fitness_mean']:.4g} ± {final['fitness_std']:.3g}"
                if final.get("fitness_per_seed")
                else ""
            )
            + (
                f"; {final['fitness_over_reference']:.2f}x the reference reward's fitness"
                if final.get("fitness_over_reference") is not None
                else ""
            )
            + (
                f"; normalized score {final['normalized_score']:.3g}"
                if final.get("normalized_score") is not None
                else ""
            )
        )
    usage = doc["usage"] or {}
    console.print(
        f"tokens: {usage.get('total_tokens', 0):,} ({usage.get('requests', 0)} requests, "
        f"{usage.get('cached_requests', 0)} from cache); designer: {doc['designer']}",
        highlight=False,
    )
    console.print(f"wrote {out / 'run.json'}" + (f" and {out / 'best_reward.py'}" if best else ""), highlight=False)
    if status != RunStatus.SUCCEEDED:
        err.print("the run did not succeed; see run.json for each candidate's error")
        raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    cli.command()(run)
