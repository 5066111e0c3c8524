"""`rewardsmith envs`, `check` and `evaluate`: the evaluation engine from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

import app.cli.robots as cli_robots
import envs as registry
from app.cli.common import console, err, fail, hyperparams_option, input_error, plain, read_text, shown
from app.config import get_settings
from app.errors import InvalidInput
from app.search.machine.designing import DRY_RUN_WALL_SECONDS
from app.search.rules.hyperparams import check_rollout
from app.search.rules.options import parse_options
from envs.describe import describe, describe_fitness
from envs.fitness import UnknownFitnessError
from workers.engine.evaluate import BudgetError, check_budget, evaluate_reward, sandbox_check
from workers.engine.result import TrainingResult
from workers.program.policy import ProgramRejected
from workers.sandbox.runner import Outcome

envs_app = typer.Typer(
    help="List the envs, show one env's state description, add or remove a robot of your own.",
    invoke_without_command=True,
)


@envs_app.callback()
def envs_list(ctx: typer.Context) -> None:
    """List the registered envs."""
    if ctx.invoked_subcommand:
        return
    table = Table("env", "robot", "fitness metrics it was made for")
    for name in registry.names():
        spec = registry.get_spec(name)
        table.add_row(name, spec.title, ", ".join(spec.reference_fitness))
    for name, title, owner in cli_robots.user_envs():
        table.add_row(shown(name), f"{shown(title)} (owner: {shown(owner)})", "")
    console.print(table)
    console.print("Built-in fitness metrics:\n" + describe_fitness(), highlight=False)


@envs_app.command("show")
def envs_show(env: str = typer.Argument(..., help="Env name, e.g. HalfCheetah-v5")) -> None:
    """Print the env's state description (what the designer sees), its fitness metrics and its reference reward;
    for a user robot also its owner, files and every setting (defaults resolved)."""
    try:
        spec = cli_robots.require_env(env)
    except registry.UnknownEnvError as e:
        fail(str(e))
    console.print(describe(spec), highlight=False, markup=False)
    console.print("\n## Fitness metrics for this env\n" + describe_fitness(spec), highlight=False, markup=False)
    whose = "Gymnasium's" if spec.robot is None else "rewardsmith's generic one for a user robot"
    console.print(f"\n## Reference reward ({whose}, in the reward contract)\n", markup=False)
    console.print(spec.reference_reward, highlight=False, markup=False)
    if spec.robot is not None:
        cli_robots.show_robot(env)


def check(
    file: Path | None = typer.Argument(None, help="Reward program to check."),
    env: str = typer.Option(..., "--env", help="Env whose states the dry run uses."),
    fitness: Path | None = typer.Option(
        None, "--fitness", help="Check this fitness program instead of a reward program."
    ),
) -> None:
    """Check a reward (or fitness) program: static rules, then a dry run on states sampled from the env."""
    if (file is None) == (fitness is None):
        fail("give either a reward program FILE or --fitness FILE.")
    kind, path = ("fitness", fitness) if fitness else ("reward", file)
    assert path is not None
    try:
        cli_robots.require_env(env)
    except registry.UnknownEnvError as e:
        fail(str(e))
    source = read_text(path, kind)
    result = sandbox_check(env, source, kind, get_settings().sandbox_limits(wall_seconds=DRY_RUN_WALL_SECONDS))
    if result.outcome != Outcome.OK:
        err.print(f"[bold red]{shown(path)}: {shown(result.outcome)}[/]", highlight=False)
        err.print(plain(result.error or ""), highlight=False, markup=False)
        raise typer.Exit(1)
    report = result.payload["report"]
    console.print(
        f"[green]{shown(path)}: accepted[/] ({kind} program, dry run on {report['states']} states of {env})",
        highlight=False,
    )
    if kind == "reward":
        table = Table("component", "mean", "min", "max")
        for name, st in report["component_stats"].items():
            table.add_row(shown(name), f"{st['mean']:.4g}", f"{st['min']:.4g}", f"{st['max']:.4g}")
        r = report["reward"]
        table.add_row("[bold]reward[/]", f"{r['mean']:.4g}", f"{r['min']:.4g}", f"{r['max']:.4g}")
        console.print(table)
    else:
        console.print(f"fitness on a sampled episode: {report['fitness_value']:.4g}")
    console.print("time per call: " + ", ".join(f"{shown(k)} {v:.3f} ms" for k, v in report["ms_per_call"].items()))
    for w in report["warnings"]:  # program text (component names) is never read as markup
        console.print(f"[yellow]warning:[/] {shown(w)}", highlight=False)
    console.print(f"isolation: {shown(result.isolation.get('network', 'unknown'))}", highlight=False)


def evaluate(
    env: str = typer.Option(..., "--env", help="Env name, e.g. HalfCheetah-v5."),
    reward: Path = typer.Option(..., "--reward", help="Reward program file."),
    out: Path = typer.Option(..., "--out", help="Directory for result.json, the policy and the video."),
    fitness: str | None = typer.Option(None, "--fitness", help="Built-in fitness metric (default forward_distance)."),
    fitness_file: Path | None = typer.Option(
        None, "--fitness-file", help="A fitness program instead of a built-in metric."
    ),
    timesteps: int = typer.Option(50_000, "--timesteps", help="PPO training steps."),
    seed: int = typer.Option(0, "--seed"),
    video: bool = typer.Option(False, "--video", help="Record an mp4 of the trained policy."),
    eval_episodes: int = typer.Option(5, "--eval-episodes", help="Deterministic episodes in the final evaluation."),
    hyperparams: Path | None = typer.Option(
        None,
        "--hyperparams",
        help="PPO hyperparameters, RL Zoo-style, in a YAML or JSON file (learning_rate: lin_3e-4, n_steps, ...).",
    ),
) -> None:
    """Train PPO with a reward program in the sandbox and measure the policy's fitness."""
    if fitness and fitness_file:
        fail("give either --fitness NAME or --fitness-file FILE, not both.")
    try:
        spec = cli_robots.require_env(env)
        check_budget(timesteps, get_settings().max_timesteps_per_training)
    except (registry.UnknownEnvError, BudgetError) as e:
        fail(str(e))
    ppo = hyperparams_option(hyperparams, env)
    try:
        train = parse_options({"train": {"eval_episodes": eval_episodes}}).train
    except InvalidInput as e:
        fail(f"--eval-episodes {eval_episodes}: {e.message.split(': ', 1)[-1]}")
    try:
        if ppo is not None:
            train = parse_options({"train": {"eval_episodes": eval_episodes, "ppo": ppo}}).train
        check_rollout(train.ppo, spec.ppo, env=env)
    except InvalidInput as e:
        fail(input_error(e, hyperparams))
    options = train.engine_options()
    source = read_text(reward, "reward")
    fsource = read_text(fitness_file, "fitness") if fitness_file else None
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(f"training {env}", total=timesteps, note="checking")

        def on_event(e: dict) -> None:  # sent by the sandboxed process: read with care
            done = e.get("timesteps")
            if e.get("event") == "start":
                progress.update(bar, note="training")
            elif e.get("event") in ("checkpoint", "progress") and isinstance(done, int):
                progress.update(bar, completed=min(done, timesteps))
            if e.get("event") == "checkpoint" and isinstance(e.get("fitness"), float | int):
                progress.update(bar, note=f"fitness {e['fitness']:.3g}")

        try:
            result = evaluate_reward(
                env=env,
                reward_source=source,
                fitness_name=fitness,
                fitness_source=fsource,
                timesteps=timesteps,
                seed=seed,
                out=out,
                limits=get_settings().sandbox_limits(),
                video=video,
                options=options,
                on_event=on_event,
            )
        except (UnknownFitnessError, ProgramRejected) as e:
            fail(str(e))
    _summary(result, out, video=video)
    if result["status"] != Outcome.OK:
        raise typer.Exit(1)


def _summary(result: TrainingResult, out: Path, *, video: bool = False) -> None:
    status = result["status"]
    colour = "green" if status == Outcome.OK else "red"
    table = Table(title=f"{result['env']}: [{colour}]{status}[/]", show_header=False)
    if error := result.get("error"):
        table.add_row("error", shown(error))
    fit = result.get("fitness")
    if fit:
        per = ", ".join(f"{v:.3g}" for v in fit["per_episode"])
        table.add_row(f"fitness ({shown(result['fitness_name'])})", f"{fit['mean']:.4g} ± {fit['std']:.3g}  [{per}]")
    for name, series in (result.get("components") or {}).items():
        last = next((s for s in reversed(series) if s), None)
        if last:
            table.add_row(
                f"component {shown(name)}",
                f"mean {last['mean']:.4g} (min {last['min']:.3g}, max {last['max']:.3g}) at the end",
            )
    if result.get("timesteps"):
        table.add_row("timesteps", f"{result['timesteps']:,}")
    if result.get("steps_per_second"):
        table.add_row("training speed", f"{result['steps_per_second']:,.0f} steps/s")
    table.add_row("seconds", f"{result['seconds']:.1f}")
    table.add_row("isolation", shown(result.get("isolation", {}).get("network", "-")))
    for w in result.get("warnings", []):
        table.add_row("warning", shown(w))
    console.print(table)
    console.print(f"result: {plain(out / 'result.json')}", highlight=False, markup=False)
    if (out / "policy.zip").exists():
        console.print(
            f"policy: {plain(out / 'policy.zip')} (stable_baselines3.PPO.load) with {plain(out / 'vecnormalize.pkl')} "
            "(VecNormalize.load)",
            highlight=False,
            markup=False,
        )
    if (out / "tb").is_dir():
        console.print(f"learning curves: tensorboard --logdir {plain(out)}", highlight=False, markup=False)
    clip = (result.get("artifacts") or {}).get("video")
    if clip and (out / clip).is_file():
        info = result.get("video")
        length = f" ({info['seconds']:.1f} s, {info['steps']:,} steps)" if info else ""
        console.print(f"video: {plain(out / clip)}{length}", highlight=False, markup=False)
    elif video and result["status"] == Outcome.OK:
        console.print(
            "[yellow]warning:[/] no video was written: offscreen rendering is not available here "
            "(set MUJOCO_GL=egl or MUJOCO_GL=osmesa and install its library)",
            highlight=False,
        )


def register(cli: typer.Typer) -> None:
    cli_robots.register(envs_app)
    cli.add_typer(envs_app, name="envs")
    cli.command()(check)
    cli.command()(evaluate)
