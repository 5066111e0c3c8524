"""`rewardsmith run` and `rewardsmith approve`: a whole search from the command line, in this process."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy.orm import sessionmaker

import app.cli.lock as lock
from app.cli.common import console, err, fail, hyperparams_option, input_error, read_text, shown
from app.cli.progress import RunBar
from app.config import get_settings
from app.db import session_scope
from app.db.models import Candidate, Run
from app.errors import InvalidInput, RewardsmithError
from app.search.records.progress import duration
from app.search.records.proposals import open_proposal, proposal_dict
from app.search.records.run_json import designer_label
from app.search.rules.states import ProposalStatus, RunStatus
from app.search.rules.task import default
from app.search.service import (
    COMMAND_LINE,
    LocalRun,
    TaskSpec,
    add_feedback,
    approve,
    continue_run,
    local_database,
    replace,
    run_local,
    task_budget,
    training_rate,
)

WAITING_EXIT = 3
"""Exit status of a run that stops to wait for a person (a proposed fitness to approve)."""


def run(
    ctx: typer.Context,
    env: str = typer.Option(..., "--env", help="Env name, e.g. HalfCheetah-v5."),
    task: str = typer.Option(..., "--task", help="The behaviour in words, e.g. 'make the cheetah run backwards'."),
    out: Path = typer.Option(..., "--out", help="Directory for run.json and best_reward.py."),
    fitness: str | None = typer.Option(
        None,
        "--fitness",
        help=f"Built-in fitness metric (default {default('fitness')}), or 'propose': the designer proposes one from --task "
        "and the run waits for your approval (exit status 3) unless --approve.",
    ),
    fitness_file: Path | None = typer.Option(None, "--fitness-file", help="A fitness program instead of a metric."),
    designer: str | None = typer.Option(None, "--designer", help="llm or offline (default: llm when configured)."),
    iterations: int = typer.Option(
        default("iterations"), "--iterations", help="Rounds of design, training and reflection."
    ),
    samples: int = typer.Option(default("samples"), "--samples", help="Candidates per round (K)."),
    timesteps: int = typer.Option(default("timesteps"), "--timesteps", help="PPO steps per candidate."),
    seed: int = typer.Option(default("seed"), "--seed"),
    successive_halving: bool = typer.Option(
        default("options.successive_halving"),
        "--successive-halving",
        help="Screen all K on a fraction, continue the better half.",
    ),
    final_seeds: int = typer.Option(
        default("options.final_seeds"), "--final-seeds", help="Extra seeds to re-evaluate the best on (0: none)."
    ),
    baselines: bool = typer.Option(
        default("options.baselines"),
        "--baselines/--no-baselines",
        help="Train the reference and sparse rewards for a normalized score.",
    ),
    critic_review: bool = typer.Option(
        default("options.critic_review"), "--critic-review", help="Let the LLM review each candidate before training."
    ),
    continue_from_parent: bool = typer.Option(
        default("options.continue_from_parent"),
        "--continue-from-parent/--from-scratch",
        help="From the second iteration on, start each candidate's training from its parent's policy.",
    ),
    warm_start_budget: float = typer.Option(
        default("options.warm_start_budget"),
        "--warm-start-budget",
        help="Share of --timesteps a candidate trains when it starts from its parent's policy (0.1 to 1).",
    ),
    trajectory_screen: bool = typer.Option(
        default("options.trajectory_screen"),
        "--trajectory-screen/--no-trajectory-screen",
        help="Screen each candidate on the run's recorded episodes before training it.",
    ),
    eval_episodes: int = typer.Option(
        default("options.train.eval_episodes"),
        "--eval-episodes",
        help="Deterministic episodes per final evaluation.",
    ),
    episode_steps: int | None = typer.Option(
        None, "--episode-steps", help="Cap on episode length (default: the env's 1000)."
    ),
    hyperparams: Path | None = typer.Option(
        None,
        "--hyperparams",
        help="PPO hyperparameters, RL Zoo-style, in a YAML or JSON file (n_envs, n_steps, batch_size, learning_rate "
        "as a number or lin_<number>, policy_kwargs, ...); unset ones keep the env's defaults.",
    ),
    parallel: int | None = typer.Option(None, "--parallel", help="Trainings at once (default: CPU cores)."),
    approve: bool = typer.Option(
        False, "--approve", help="With --fitness propose: accept the proposed fitness without asking."
    ),
) -> None:
    """Search for a reward: K candidates × N iterations, trained in the sandbox; writes run.json and best_reward.py."""
    if fitness and fitness_file:
        fail("give either --fitness NAME or --fitness-file FILE, not both.")
    settings = get_settings()
    ctx.with_resource(lock.holding(settings.data_dir, "rewardsmith run"))  # no `serve` works this data dir meanwhile
    fitness_value = read_text(fitness_file, "fitness") if fitness_file else (fitness or default("fitness"))
    train_opts: dict = {"eval_episodes": eval_episodes}
    if episode_steps:
        train_opts["episode_steps"] = episode_steps
    ppo = hyperparams_option(hyperparams, env)
    if ppo is not None:
        train_opts["ppo"] = ppo
    try:
        spec = TaskSpec.parse(
            {
                "env": env,
                "description": task,
                "fitness": fitness_value,
                "designer": designer,
                "iterations": iterations,
                "samples": samples,
                "timesteps": timesteps,
                "seed": seed,
                "options": {
                    "successive_halving": successive_halving,
                    "final_seeds": final_seeds,
                    "baselines": baselines,
                    "critic_review": critic_review,
                    "continue_from_parent": continue_from_parent,
                    "warm_start_budget": warm_start_budget,
                    "trajectory_screen": trajectory_screen,
                    "train": train_opts,
                },
            }
        )
    except InvalidInput as e:
        fail(input_error(e, hyperparams))

    def started(local: LocalRun) -> None:
        with session_scope(local.sf) as s:
            run = s.get(Run, local.run_id)
            assert run is not None
            label = designer_label(run, settings.llm_model)
            rate, rate_source = training_rate(s, settings, env=env)
        budget = task_budget(spec, settings)
        console.print(
            f"run {local.run_id}: {shown(env)}, '{shown(task)}', {iterations} iterations × {samples} candidates × "
            f"{timesteps:,} steps; designer: [bold]{label}[/]",
            highlight=False,
        )
        console.print(
            f"at most {budget.timesteps:,} steps in {budget.trainings} trainings: ≈ "
            f"{duration(budget.timesteps / rate)} on one worker slot at {rate:,.0f} steps/s ({rate_source})",
            highlight=False,
        )

    bar = RunBar(console)
    try:
        local = run_local(spec, settings, max_parallel=parallel, on_start=started, on_tick=bar.on_tick)
    except InvalidInput as e:
        fail(input_error(e, hyperparams))
    finally:
        bar.stop()
    if local.status == RunStatus.WAITING_FITNESS and approve:
        _decide_and_continue(local, source=None)
    _report(local, out)


def _show_proposal(sf: sessionmaker, run_id: int) -> dict | None:
    """Print the proposal that waits for a decision, with what it measured; returns it."""
    with session_scope(sf) as s:
        p = open_proposal(s, run_id)
        proposal = proposal_dict(p) if p else None
    if proposal is None:
        return None
    console.print(f"proposed fitness ({shown(proposal['author'])}): {shown(proposal['meaning'] or proposal['name'])}")
    if proposal["source"]:
        console.print(shown(proposal["source"].rstrip()), highlight=False)
    m = proposal["measurement"]
    if m.get("values"):
        values = ", ".join(f"{v:.4g}" for v in m["values"])
        console.print(
            f"on {m['episodes']} random-policy episodes: {values} (mean {m['mean']:.4g} ± {m['std']:.3g})",
            highlight=False,
        )
        if m.get("verdict"):
            colour = "green" if m.get("tells_apart") == "yes" else "yellow"
            console.print(f"[{colour}]{shown(m['verdict'])}[/]", highlight=False)
    if proposal["status"] == ProposalStatus.BROKEN:
        err.print(f"[red]it did not pass the checks:[/] {shown(proposal['error'] or '')}", highlight=False)
    return proposal


def _decide_and_continue(local: LocalRun, *, source: str | None) -> RunStatus:
    """Approve the open proposal and work the run off; or replace it with ``source``, which then waits, measured,
    for its own approval."""
    settings, dispatcher = local.settings, local.dispatcher
    with session_scope(local.sf) as s:
        run = s.get(Run, local.run_id)
        assert run is not None
        try:
            if source is None:
                approve(s, run=run, user_id=None, who=COMMAND_LINE, settings=settings, dispatcher=dispatcher)
            else:
                replace(
                    s, run=run, source=source, user_id=None, who=COMMAND_LINE, settings=settings, dispatcher=dispatcher
                )
        except RewardsmithError as e:
            if source is None:
                _show_proposal(local.sf, local.run_id)
            fail(e.message)
    if source is not None:  # shown with what it measures, as a proposal is; approved by a second `approve`
        local.status = RunStatus.WAITING_FITNESS
        return local.status
    console.print(f"run {local.run_id}: fitness approved ({COMMAND_LINE}); the search starts", highlight=False)
    bar = RunBar(console)
    try:
        return local.settle(on_tick=bar.on_tick)
    finally:
        bar.stop()


def _report(local: LocalRun, out: Path) -> None:
    """Write run.json (and best_reward.py), print the outcome, and exit non-zero unless the run succeeded."""
    run_id, status = local.run_id, local.status
    if status == RunStatus.WAITING_FITNESS:
        _show_proposal(local.sf, run_id)
    out.mkdir(parents=True, exist_ok=True)
    doc = local.doc()
    (out / "run.json").write_text(json.dumps(doc, indent=2, default=str, allow_nan=False))
    best = doc["best_candidate"]
    if best and best.get("code"):
        (out / "best_reward.py").write_text(best["code"])
    final = doc["final"] or {}
    colour = "green" if status == RunStatus.SUCCEEDED else "red"
    console.print(f"run {run_id}: [{colour}]{status}[/]" + (f" — {shown(doc['error'])}" if doc["error"] else ""))
    if doc["summary"].startswith("the search learned nothing"):
        console.print(f"[yellow]{shown(doc['summary'])}[/]")
    for d in doc["diagnostics"]:
        console.print(f"  {d['code']}: {shown(d['advice'])}")
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
            + (
                f"; on fresh seeds {final['yardstick']['best_mean']:.4g} vs the reference reward's "
                f"{final['yardstick']['reference_mean']:.4g}"
                if (final.get("yardstick") or {}).get("seeds")
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
    if status == RunStatus.WAITING_FITNESS:
        err.print(
            f"run {run_id} waits for your approval of its fitness. Approve it with `rewardsmith approve {run_id} "
            f"--out {shown(out)}` (or give your own program with --fitness-file FILE), or in the dashboard; or run the task "
            "again with --approve to accept the proposal without asking.",
            highlight=False,
        )
        raise typer.Exit(WAITING_EXIT)
    if status != RunStatus.SUCCEEDED:
        err.print("the run did not succeed; see run.json for each candidate's error")
        raise typer.Exit(1)


def approve_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="The run that waits for its fitness (printed by `rewardsmith run`)."),
    out: Path = typer.Option(..., "--out", help="Directory for run.json and best_reward.py."),
    fitness_file: Path | None = typer.Option(
        None, "--fitness-file", help="Your own fitness program instead of the proposal (checked the same way)."
    ),
    parallel: int | None = typer.Option(None, "--parallel", help="Trainings at once (default: CPU cores)."),
) -> None:
    """Approve the proposed fitness of a waiting run and run its search here; or replace it with your program, which is
    checked and measured on random-policy episodes, then waits for your approval like a proposal."""
    settings = get_settings()
    ctx.with_resource(lock.holding(settings.data_dir, "rewardsmith approve"))
    source = read_text(fitness_file, "fitness") if fitness_file else None
    sf = local_database(settings)
    with session_scope(sf) as s:
        run = s.get(Run, run_id) if 0 < run_id < 2**31 else None
        if run is None:
            fail(f"there is no run {run_id} in {settings.resolved_database_url.split('@')[-1]}")
        if run.status != RunStatus.WAITING_FITNESS:
            fail(f"run {run_id} does not wait for a fitness approval (it is '{run.status}')")
    local = LocalRun.attach(sf, settings, run_id, max_parallel=parallel)
    _decide_and_continue(local, source=source)
    _report(local, out)


def continue_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="A run that succeeded (printed by `rewardsmith run`)."),
    out: Path = typer.Option(..., "--out", help="Directory for run.json and best_reward.py."),
    iterations: int = typer.Option(1, "--iterations", help="Iterations to add."),
    feedback: str | None = typer.Option(
        None, "--feedback", help="Your words on the best candidate; the next iteration's prompt carries them."
    ),
    parallel: int | None = typer.Option(None, "--parallel", help="Trainings at once (default: CPU cores)."),
) -> None:
    """Continue a run that succeeded for more iterations, here, with your feedback on its best in the next prompt."""
    settings = get_settings()
    ctx.with_resource(lock.holding(settings.data_dir, "rewardsmith continue"))
    sf = local_database(settings)
    local = LocalRun.attach(sf, settings, run_id, max_parallel=parallel) if 0 < run_id < 2**31 else None
    with session_scope(sf) as s:
        run = s.get(Run, run_id) if local is not None else None
        if run is None or local is None:
            fail(f"there is no run {run_id} in {settings.resolved_database_url.split('@')[-1]}")
        try:
            if feedback and run.best_candidate_id:
                best = s.get(Candidate, run.best_candidate_id)
                assert best is not None
                add_feedback(s, candidate=best, text=feedback, rating=None, user_id=None)
            continue_run(s, run=run, iterations=iterations, settings=settings, dispatcher=local.dispatcher)
        except RewardsmithError as e:
            fail(e.message)
    console.print(f"run {run_id}: continued for {iterations} more iteration(s)", highlight=False)
    bar = RunBar(console)
    try:
        local.settle(on_tick=bar.on_tick)
    finally:
        bar.stop()
    _report(local, out)


def register(cli: typer.Typer) -> None:
    cli.command()(run)
    cli.command(name="approve")(approve_command)
    cli.command(name="continue")(continue_command)
