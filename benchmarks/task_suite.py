"""A task suite: does the search find good rewards for what users actually ask, judged on seeds it never saw?

Issue 11: "benchmarks/task_suite.py runs >= 8 tasks across the five envs, each a sentence plus a fitness program,
including behaviours the env's own reward does not ask for. For each: the designer's best, the reference reward
and fitness-used-as-reward, at equal training budget, re-evaluated on 3 fresh seeds; a table, JSON and a plot;
success per task against a threshold stated in the suite. Target: the designer's best is at least the better
baseline on >= 6 of 8 tasks; no task ends with identical fitness for every candidate without the diagnostic."

Issue 18 adds four tasks on the new envs (Reacher, Pusher, Swimmer, and a user robot: the test quadruped), with
thresholds stated before any run. The quadruped is added to its task's database as a user adds a robot (the
sandboxed compile of ``add_robot``) before the search starts. The target above is issue 11's, over its eight tasks.

Each task is one search (``app.search.service.run_local``, a fresh SQLite database, baselines on,
``final_seeds`` 3): the run trains the reference reward and the fitness's per-step form as baselines, and re-trains
its best candidate and the reference reward on seeds seed+1000..1002 (the run's ``final.yardstick``). The suite
re-trains the fitness-as-reward baseline on the same three seeds, so all three are compared where none was
selected. The designer is the LLM one when an endpoint is configured (OPENAI_BASE_URL, REWARDSMITH_LLM_MODEL),
else the offline designer; ``--designer`` forces one.

    .venv/bin/python benchmarks/task_suite.py                  # every task, 2 x 3 x 200,000 steps
    .venv/bin/python benchmarks/task_suite.py --quick          # tiny budgets, to validate (figures mean nothing)
    .venv/bin/python benchmarks/task_suite.py --tasks hopper_hop_high,ant_sideways --timesteps 100000

Issue 22's two features are task options the suite sets: ``--continue-from-parent on|off`` (children start from their
parent's policy) and ``--trajectory-screen on|off`` (rewards screened on recorded episodes before training); both are
on by default, as in the product. ``--side-by-side`` runs every task twice on the same seeds, both features off and
both on, and reports each: tasks at least the better baseline, thresholds reached, total PPO steps used, trainings
the screen saved. ``--train-screened N`` trains up to N screened-out candidates per task anyway (from scratch, at the
task's budget, on its seed; in the benchmark only) and counts how often one would have beaten its iteration's best.

    .venv/bin/python benchmarks/task_suite.py --side-by-side --timesteps 100000 --train-screened 2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, ROOT, load_average, machine_info, pyplot, save_figure, write_json, write_outputs

NAME = "task_suite"
FRESH_SEEDS = 3
TARGET_TASKS = 6


@dataclass(frozen=True)
class SuiteTask:
    name: str
    env: str
    sentence: str
    fitness: str
    """A fitness program (``compute_fitness(traj)``)."""
    threshold: float
    """Success: the designer's best reaches this on the fresh seeds (mean), at the full budget."""
    unit: str
    robot: str | None = None
    """A user robot's MJCF (relative to the repository) when ``env`` is one: added (as ``env``, default settings) to
    the task's database before its search."""


def _fit(body: str) -> str:
    return f"import numpy as np\n\n\ndef compute_fitness(traj):\n    return float({body})\n"


TASKS: tuple[SuiteTask, ...] = (
    SuiteTask(
        "cheetah_backward",
        "HalfCheetah-v5",
        "make the cheetah run backwards",
        _fit("-np.sum(traj.x_velocity) * traj.dt"),
        10.0,
        "m travelled along -x",
    ),
    SuiteTask(
        "cheetah_front_flip",
        "HalfCheetah-v5",
        "do a front flip",
        _fit("np.sum(traj.angular_velocity[:, 1]) * traj.dt / (2.0 * np.pi)"),
        1.0,
        "net front turns",
    ),
    SuiteTask(
        "cheetah_jump",
        "HalfCheetah-v5",
        "jump as high as you can",
        _fit("np.max(traj.z_position)"),
        0.3,
        "m, highest torso height",
    ),
    SuiteTask(
        "hopper_hop_high",
        "Hopper-v5",
        "hop as high as you can, landing on your foot each time",
        _fit("np.max(traj.z_position)"),
        1.5,
        "m, highest torso height",
    ),
    SuiteTask(
        "hopper_balance",
        "Hopper-v5",
        "stand still on one foot and keep your balance",
        _fit("np.sum(traj.is_healthy) * traj.dt - 5.0 * np.mean(np.abs(traj.x_velocity))"),
        6.0,
        "s healthy minus 5 x mean abs(x speed)",
    ),
    SuiteTask(
        "walker_slow_walk",
        "Walker2d-v5",
        "walk forward slowly, at about 1 m/s",
        _fit("np.sum(1.0 - np.minimum(np.abs(traj.x_velocity - 1.0), 1.0)) * traj.dt"),
        3.0,
        "s-weighted closeness to 1 m/s",
    ),
    SuiteTask(
        "ant_sideways",
        "Ant-v5",
        "walk sideways, to the left",
        _fit("np.sum(traj.y_velocity) * traj.dt"),
        3.0,
        "m travelled along +y",
    ),
    SuiteTask(
        "humanoid_upright",
        "Humanoid-v5",
        "stay upright, do not fall",
        _fit("np.sum(traj.upright > 0.9) * traj.dt"),
        3.0,
        "s with the torso upright",
    ),
    # Issue 18's tasks on the new envs; thresholds set before any run, from Gymnasium's own bars and the distances
    # the tasks allow (targets lie within 0.2 m of Reacher's base; Pusher's object starts over 0.17 m from its goal).
    SuiteTask(
        "reacher_reach",
        "Reacher-v5",
        "touch the target with the fingertip and stay on it",
        "import numpy as np\n\n\ndef compute_fitness(traj):\n"
        '    tip = traj.body_positions[-1, traj.body_names.index("fingertip")]\n'
        '    target = traj.body_positions[-1, traj.body_names.index("target")]\n'
        "    return float(-np.linalg.norm(tip - target))\n",
        -0.03,
        "minus m from the target at the end",
    ),
    SuiteTask(
        "pusher_push",
        "Pusher-v5",
        "push the cylinder onto the goal",
        "import numpy as np\n\n\ndef compute_fitness(traj):\n"
        '    thing = traj.body_positions[-1, traj.body_names.index("object")]\n'
        '    goal = traj.body_positions[-1, traj.body_names.index("goal")]\n'
        "    return float(-np.linalg.norm(thing - goal))\n",
        -0.1,
        "minus m from the goal at the end",
    ),
    SuiteTask(
        "swimmer_forward",
        "Swimmer-v5",
        "swim forward as fast as you can",
        _fit("np.sum(traj.x_velocity) * traj.dt"),
        4.0,
        "m travelled along +x in 40 s",
    ),
    SuiteTask(
        "quadruped_forward",
        "test_quadruped",
        "walk forward",
        _fit("np.sum(traj.x_velocity) * traj.dt"),
        5.0,
        "m travelled along +x in 50 s",
        robot="tests/fixtures/robots/quadruped.xml",
    ),
)

DEFAULTS = {
    "iterations": 2,
    "samples": 3,
    "timesteps": 200_000,
    "train_options": {"eval_episodes": 3},
}
QUICK = {
    "iterations": 1,
    "samples": 2,
    "timesteps": 2_048,
    "train_options": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2},
}


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def train_from_scratch(
    task: SuiteTask, code: str, seed: int, timesteps: int, options: dict, out: Path, limits
) -> float | None:
    """``code`` trained from scratch on ``seed`` for ``timesteps`` in the sandbox (``limits``): the mean fitness of its
    evaluation, or None when it failed."""
    from workers.engine.evaluate import evaluate_reward

    result = evaluate_reward(
        env=task.env,
        reward_source=code,
        fitness_name="custom",
        fitness_source=task.fitness,
        timesteps=timesteps,
        seed=seed,
        out=out,
        limits=limits,
        options=dict(options),
    )
    fit = result.get("fitness")
    return float(fit["mean"]) if result.get("status") == "ok" and fit else None


def fresh_training(task: SuiteTask, code: str, seeds: list[int], args, settings, workdir: Path) -> list[float | None]:
    """``code`` trained on each of ``seeds`` at the task's budget (the fitness-as-reward baseline's fresh seeds)."""

    def one(seed: int) -> float | None:
        return train_from_scratch(
            task, code, seed, args.timesteps, args.train_options, workdir / f"sparse-{seed}", settings.sandbox_limits()
        )

    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        return list(pool.map(one, seeds))


def add_suite_robot(task: SuiteTask, settings) -> None:
    """Store the task's robot in its database as `rewardsmith envs add` does (compiled and checked in the sandbox)."""
    from app.db import session_scope
    from app.search.service import add_robot, local_database

    assert task.robot is not None
    model = ROOT / task.robot
    sf = local_database(settings)
    with session_scope(sf) as s:
        add_robot(
            s,
            name=task.env,
            files={model.name: model.read_bytes()},
            root_file=model.name,
            robot_settings={},
            owner_id=None,
            settings=settings,
        )
    sf.kw["bind"].dispose()


def run_task(task: SuiteTask, args, workroot: Path, settings_overrides: dict | None = None) -> dict:
    """One search for ``task`` and its three figures on fresh seeds."""
    from app.config import Settings
    from app.db import session_scope
    from app.search.design.diagnostics import Code
    from app.search.service import TaskSpec, run_local

    data = workroot / task.name
    data.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data / 'search.sqlite3'}"
    settings = Settings(_env_file=None, data_dir=data, database_url=url, broker_url=None, **(settings_overrides or {}))
    designer = args.designer if args.designer != "auto" else ("llm" if settings.llm_configured else "offline")
    if task.robot:
        add_suite_robot(task, settings)
    spec = TaskSpec.parse(
        {
            "env": task.env,
            "description": task.sentence,
            "fitness": task.fitness,
            "designer": designer,
            "iterations": args.iterations,
            "samples": args.samples,
            "timesteps": args.timesteps,
            "seed": args.seed,
            "options": {
                "baselines": True,
                "final_seeds": args.fresh_seeds,
                "train": dict(args.train_options),
                "continue_from_parent": args.continue_from_parent == "on",
                "warm_start_budget": args.warm_start_budget,
                "trajectory_screen": args.trajectory_screen == "on",
            },
        }
    )
    t0 = time.monotonic()
    local = run_local(spec, settings, max_parallel=args.parallel)
    status, sf, doc = local.status, local.sf, local.doc()
    yard = (doc.get("final") or {}).get("yardstick") or {}
    seeds = yard.get("seeds") or [args.seed + 1000 + i for i in range(args.fresh_seeds)]
    sparse = next((b for b in doc["baselines"] if b["origin"] == "baseline-sparse"), None)
    sparse_code = None
    if sparse is not None:
        with session_scope(sf) as s:
            from app.db.models import Candidate

            sparse_code = s.get(Candidate, sparse["id"]).code
    local.close()
    sparse_fresh = fresh_training(task, sparse_code, seeds, args, settings, data) if sparse_code else []
    candidates = [c for it in doc["iterations"] for c in it["candidates"]]
    screened_out = screened_out_outcomes(task, doc, args, settings, data)
    scored = [c["fitness"] for c in candidates if c["status"] == "trained" and c["fitness"] is not None]
    codes = [d["code"] for d in doc.get("diagnostics") or []]
    identical = len(scored) >= 2 and len({round(f, 6) for f in scored}) == 1
    best_fresh = _mean([x for x in yard.get("best_per_seed") or [] if x is not None])
    ref_fresh = _mean([x for x in yard.get("reference_per_seed") or [] if x is not None])
    sparse_mean = _mean([x for x in sparse_fresh if x is not None])
    better = max((x for x in (ref_fresh, sparse_mean) if x is not None), default=None)
    return {
        "task": asdict(task),
        "timesteps": args.timesteps,
        "designer": doc["designer"],
        "status": status,
        "error": doc.get("error"),
        "summary": doc.get("summary"),
        "wall_seconds": time.monotonic() - t0,
        "fresh_seeds": seeds,
        "best": {"mean": best_fresh, "per_seed": yard.get("best_per_seed"), "selected_on": doc["best_candidate"]},
        "reference": {"mean": ref_fresh, "per_seed": yard.get("reference_per_seed")},
        "fitness_as_reward": {"mean": sparse_mean, "per_seed": sparse_fresh, "available": sparse_code is not None},
        "better_baseline": better,
        "beats_better_baseline": best_fresh is not None and better is not None and best_fresh >= better,
        "success": best_fresh is not None and best_fresh >= task.threshold,
        "candidate_fitness": scored,
        "diagnostics": codes,
        "identical_fitness": identical,
        "identical_without_diagnostic": identical and Code.INDISTINGUISHABLE not in codes,
        "best_code": (doc["best_candidate"] or {}).get("code"),
        "usage": doc.get("usage"),
        "features": {"continue_from_parent": args.continue_from_parent, "trajectory_screen": args.trajectory_screen},
        "steps_used": (doc.get("usage") or {}).get("timesteps_trained"),
        "search_steps": search_steps(doc),
        "trainings_saved_by_screen": (doc.get("usage") or {}).get("trainings_saved_by_screen", 0),
        "lineage": (doc.get("final") or {}).get("lineage"),
        "screened_out_trained": screened_out,
    }


SEARCH_PURPOSES = ("screen", "full")
"""Trainings of the search itself; the baselines and the final measurement (the yardstick on fresh seeds, the
reference trained as long as the lineage) come on top in either mode."""


def search_steps(doc: dict) -> int:
    """PPO steps the search's own candidates trained (their budgets, and a warm-started child's value warm-up)."""
    total = 0
    for it in doc["iterations"]:
        for c in it["candidates"]:
            for t in c.get("trainings") or []:
                if t.get("purpose") in SEARCH_PURPOSES and t.get("status") == "ok":
                    total += int(t.get("timesteps") or 0) + int(
                        (t.get("warm_start") or {}).get("value_warmup_steps") or 0
                    )
    return total


def lineage_beats_reference(row: dict) -> bool | None:
    """Whether the best lineage policy beat the reference reward trained for the lineage's total steps on the same
    fresh seeds; None where the best candidate had no ancestors (its policy is the yardstick's story)."""
    lin = row.get("lineage") or {}
    if lin.get("policy_mean") is None or lin.get("reference_mean") is None:
        return None
    return lin["policy_mean"] >= lin["reference_mean"]


def screened_out_outcomes(task: SuiteTask, doc: dict, args, settings, workdir: Path) -> list[dict]:
    """Up to ``--train-screened`` screened-out candidates of the run, trained anyway (from scratch, at the task's
    budget, on its seed), with the best trained candidate of their iteration beside them (None: the screen refused
    the whole iteration). Whether one would have won is judged against the run's best (``would_have_won``)."""
    out: list[dict] = []
    for it in doc["iterations"]:
        trained = [c["fitness"] for c in it["candidates"] if c["status"] == "trained" and c["fitness"] is not None]
        refused = [
            c
            for c in it["candidates"]
            if c["status"] == "rejected" and (c.get("screen") or {}).get("verdict") in REFUSING and c.get("code")
        ]
        for c in refused:
            if len(out) >= args.train_screened:
                return out
            (fitness,) = fresh_training(task, c["code"], [args.seed], args, settings, workdir / f"screened-{c['id']}")
            best = max(trained, default=None)
            out.append(
                {
                    "candidate": c["id"],
                    "verdict": c["screen"]["verdict"],
                    "fitness": fitness,
                    "iteration_best": best,
                }
            )
    return out


FEATURES_OFF = " (features off)"
"""Appended to a task's name in the rows a side-by-side run made with issue 22's features off."""

REFUSING = ("ranks_against_fitness", "cannot_tell_apart")
"""Screen verdicts that keep a candidate from training (``workers.engine.screen``)."""


def would_have_won(row: dict, outcome: dict) -> bool:
    """Whether a screened-out candidate, trained anyway, beat every candidate the run trained: it would have been
    the run's best. (Its iteration's best alone is no yardstick: the screen may have refused the whole iteration.)"""
    best = max(row.get("candidate_fitness") or [], default=None)
    return outcome.get("fitness") is not None and (best is None or outcome["fitness"] > best)


def against_better_baseline(row: dict) -> str:
    """The best reward's fresh-seed fitness against the better baseline's, judged by the run's own noise band
    (``app.search.design.noise``): above, below, within noise or cannot tell. The target's strict comparison of means
    counts a loss by 0.2 % like one by 50 %; this says which losses the seeds' spread cannot tell from a tie."""
    from app.search.design import noise

    best = [x for x in (row.get("best") or {}).get("per_seed") or [] if x is not None]
    baselines = [b for b in (row.get("reference"), row.get("fitness_as_reward")) if b and b.get("mean") is not None]
    if not best or not baselines:
        return noise.Verdict.CANNOT_TELL.value
    better = [x for x in max(baselines, key=lambda b: b["mean"]).get("per_seed") or [] if x is not None]
    if not better:
        return noise.Verdict.CANNOT_TELL.value
    band = noise.noise_band(best, better)
    return noise.compare(statistics.fmean(best) - statistics.fmean(better), band).value


def summarise(rows: list[dict]) -> dict:
    done = [r for r in rows if r["status"] == "succeeded"]
    beats = sum(1 for r in rows if r["beats_better_baseline"])
    verdicts = [against_better_baseline(r) for r in rows]
    trained_anyway = [(r, x) for r in rows for x in r.get("screened_out_trained") or []]
    lineage = [b for b in (lineage_beats_reference(r) for r in rows) if b is not None]
    return {
        "steps_used": sum(int(r.get("steps_used") or 0) for r in rows),
        "search_steps": sum(int(r.get("search_steps") or 0) for r in rows),
        "lineage_policies": len(lineage),
        "lineage_beats_reference": sum(lineage),
        "trainings_saved_by_screen": sum(int(r.get("trainings_saved_by_screen") or 0) for r in rows),
        "screened_out_trained": len(trained_anyway),
        "screened_out_would_have_won": sum(1 for r, x in trained_anyway if would_have_won(r, x)),
        "tasks": len(rows),
        "succeeded_runs": len(done),
        "beats_better_baseline": beats,
        "against_better_baseline_with_noise": {v: verdicts.count(v) for v in dict.fromkeys(sorted(verdicts))},
        "reached_threshold": sum(1 for r in rows if r["success"]),
        "target": f">= {TARGET_TASKS} of 8 tasks at least the better baseline",
        "meets_target": beats >= TARGET_TASKS,
        "identical_without_diagnostic": [r["task"]["name"] for r in rows if r["identical_without_diagnostic"]],
    }


def _commit() -> str | None:
    """The checkout's commit (the figures belong to this code), or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _g(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def table(rows: list[dict]) -> str:
    """The suite as a markdown table."""
    lines = [
        "| task | env | steps/training | designer best | reference | fitness as reward | ≥ better baseline | "
        "threshold | success | run diagnostics |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        t = r["task"]
        lines.append(
            f"| {t['name']} | {t['env']} | {r.get('timesteps', 0):,} | {_g(r['best']['mean'])} | {_g(r['reference']['mean'])} | "
            f"{_g(r['fitness_as_reward']['mean'])} | {'yes' if r['beats_better_baseline'] else 'no'} "
            f"({against_better_baseline(r)}) | "
            f"{t['threshold']:g} {t['unit'].replace('|', '∣')} | {'yes' if r['success'] else 'no'} | "
            f"{', '.join(r['diagnostics']) or '—'} |"
        )
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    rows = doc["rows"]
    cols = 4
    n = max(1, len(rows))
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4 * cols, 3.2 * math.ceil(n / cols)), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        names = ["designer", "reference", "fitness\nas reward"]
        series = [r["best"]["per_seed"], r["reference"]["per_seed"], r["fitness_as_reward"]["per_seed"]]
        means = [r["best"]["mean"], r["reference"]["mean"], r["fitness_as_reward"]["mean"]]
        colours = ["tab:green" if r["beats_better_baseline"] else "tab:red", "tab:blue", "tab:gray"]
        ax.bar(names, [m if m is not None else 0.0 for m in means], color=colours, alpha=0.6)
        for i, s in enumerate(series):
            pts = [x for x in (s or []) if x is not None]
            ax.scatter([i] * len(pts), pts, color="black", s=10, zorder=3)
        ax.axhline(r["task"]["threshold"], color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{r['task']['name']} ({r['task']['env']})", fontsize=9)
        ax.set_ylabel(r["task"]["unit"], fontsize=7)
        ax.tick_params(labelsize=7)
    s = doc["summary"]
    quick = " — QUICK (figures mean nothing)" if doc["settings"]["quick"] else ""
    fig.suptitle(
        f"task suite: {doc['settings']['designer']} best vs baselines on {doc['settings']['fresh_seeds']} fresh seeds; "
        f"{s['beats_better_baseline']}/{s['tasks']} at least the better baseline (dashed: threshold){quick}",
        fontsize=10,
    )
    save_figure(fig, path)


def finish(doc: dict, rows: list[dict], out: Path, name: str = NAME) -> dict:
    """The summary, table, JSON and plot of ``rows``."""
    doc["rows"] = rows
    doc["settings"]["designer"] = ", ".join(sorted({r["designer"] for r in rows})) or doc["settings"]["designer"]
    doc["summary"] = (doc.get("summary_by_features") or {}).get("on") or summarise(rows)
    doc["table"] = table(rows)
    print("\n" + doc["table"] + "\n")
    for v, f in (doc.get("summary_by_features") or {}).items():
        print(
            f"features {v}: {f['beats_better_baseline']}/{f['tasks']} at least the better baseline, "
            f"{f['reached_threshold']} thresholds, {f['steps_used']:,} steps used "
            f"({f.get('search_steps', 0):,} by the search's candidates), lineage policy beat the reference trained as "
            f"long on {f.get('lineage_beats_reference', 0)}/{f.get('lineage_policies', 0)}, "
            f"{f['trainings_saved_by_screen']} trainings saved by the screen, "
            f"{f['screened_out_would_have_won']}/{f['screened_out_trained']} screened-out would have won; "
            f"against the better baseline with the seeds' noise: {f.get('against_better_baseline_with_noise')}"
        )
    s = doc["summary"]
    print(
        f"{s['beats_better_baseline']}/{s['tasks']} tasks at least the better baseline (target {s['target']}); "
        f"{s['reached_threshold']} reached their threshold; against the better baseline with the seeds' noise: "
        f"{s.get('against_better_baseline_with_noise')}; identical fitness without the diagnostic: "
        f"{s['identical_without_diagnostic'] or 'none'}"
    )
    write_outputs(out, name, doc, plot)
    return doc


def combine(paths: list[Path], out: Path, notes: list[str], name: str = NAME) -> dict:
    """Join the rows of several suite JSONs (e.g. two processes that ran different tasks) in the suite's order; a
    later file's row replaces an earlier one of the same task. Each row keeps its run's budget and ``notes[i]`` (what
    file i was run with; none or "": the note the row has, from an earlier combine, else the file's commit)."""
    docs = [json.loads(p.read_text()) for p in paths]
    for i, d in enumerate(docs):
        note = notes[i] if i < len(notes) else ""
        for r in d["rows"]:
            r.setdefault("timesteps", d["settings"]["timesteps"])
            r["run_note"] = note or r.get("run_note") or d.get("commit")
    rows = {r["task"]["name"]: r for d in docs for r in d["rows"]}
    order = [t.name for t in TASKS]
    known = sorted(
        (n for n in rows if n.removesuffix(FEATURES_OFF) in order),
        key=lambda n: (order.index(n.removesuffix(FEATURES_OFF)), n.endswith(FEATURES_OFF)),
    )
    doc = {k: v for k, v in docs[0].items() if k not in ("rows", "partial", "summary_by_features")}
    doc["combined_from"] = [  # a file that was itself combined: the files it came from
        source
        for p, d in zip(paths, docs, strict=True)
        for source in d.get("combined_from")
        or [{"file": str(p), "tasks": [r["task"]["name"] for r in d["rows"]], "settings": d["settings"]}]
    ]
    doc["settings"] = {**doc["settings"], "tasks": [n for n in order if n in rows]}
    if any(n.endswith(FEATURES_OFF) for n in known):  # side-by-side runs: each mode's summary over all of them
        doc["summary_by_features"] = {
            v: summarise([rows[n] for n in known if n.endswith(FEATURES_OFF) == (v == "off")]) for v in ("off", "on")
        }
    return finish(doc, [rows[n] for n in known], out, name)


def main(argv: list[str] | None = None, settings_overrides: dict | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--tasks",
        help="comma-separated task names, run in this order (default: all): " + ", ".join(t.name for t in TASKS),
    )
    ap.add_argument("--designer", choices=("auto", "offline", "llm"), default="auto")
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--timesteps", type=int, help="PPO steps per training (default 200,000)")
    ap.add_argument("--train-options", type=json.loads)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh-seeds", type=int, default=FRESH_SEEDS, help="seeds none of the three was selected on")
    ap.add_argument("--parallel", type=int, default=2, help="parallel trainings within a task")
    ap.add_argument("--jobs", type=int, default=1, help="tasks run at once")
    ap.add_argument("--quick", action="store_true", help="tiny budgets, to validate")
    ap.add_argument("--continue-from-parent", choices=("on", "off"), default="on", help="issue 22's warm start")
    ap.add_argument("--trajectory-screen", choices=("on", "off"), default="on", help="issue 22's screen")
    ap.add_argument(
        "--warm-start-budget",
        type=float,
        default=None,
        help="share of --timesteps a warm-started child trains (default: the task option's default)",
    )
    ap.add_argument("--side-by-side", action="store_true", help="every task with both features off, then both on")
    ap.add_argument("--train-screened", type=int, default=0, help="screened-out candidates per task to train anyway")
    ap.add_argument("--keep", action="store_true", help="keep the databases and artifacts")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--combine", type=Path, nargs="+", help="only join the rows of JSONs this script wrote (partial ones too)"
    )
    ap.add_argument("--notes", nargs="+", help="with --combine: one note per file (the code it ran, say)")
    ap.add_argument("--name", default=NAME, help="with --combine: the JSON's and plot's file name")
    args = ap.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out, args.notes or [], args.name)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warm_start_budget is None:
        from app.search.rules.task import default

        args.warm_start_budget = default("options.warm_start_budget")
    by_name = {t.name: t for t in TASKS}
    unknown = [n for n in (args.tasks or "").split(",") if n and n not in by_name]
    if unknown:
        ap.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    chosen = [by_name[n] for n in args.tasks.split(",")] if args.tasks else list(TASKS)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    doc: dict = {
        "benchmark": NAME,
        "settings": {
            "tasks": [t.name for t in chosen],
            "designer": args.designer,
            "iterations": args.iterations,
            "samples": args.samples,
            "timesteps": args.timesteps,
            "fresh_seeds": args.fresh_seeds,
            "train_options": args.train_options,
            "seed": args.seed,
            "parallel": args.parallel,
            "jobs": args.jobs,
            "quick": args.quick,
            "continue_from_parent": "off, then on" if args.side_by_side else args.continue_from_parent,
            "trajectory_screen": "off, then on" if args.side_by_side else args.trajectory_screen,
            "train_screened": args.train_screened,
            "warm_start_budget": args.warm_start_budget,
        },
        "machine": machine_info(),
        "commit": _commit(),
    }
    print(
        f"{NAME}: {len(chosen)} tasks, {args.iterations} iterations x {args.samples} samples x {args.timesteps:,} "
        f"steps, {args.fresh_seeds} fresh seeds, train options {args.train_options}"
    )
    workroot = Path(tempfile.mkdtemp(prefix="rewardsmith-task-suite-"))
    started = time.monotonic()

    finished: list[dict] = []
    lock = threading.Lock()

    def one(job: tuple[SuiteTask, str | None]) -> dict:
        task, features = job
        run_args = argparse.Namespace(**vars(args))
        if features is not None:  # side by side: both features set together, the same seeds
            run_args.continue_from_parent = run_args.trajectory_screen = features
        r = run_task(task, run_args, workroot / (features or "run"), settings_overrides)
        with lock:  # what has finished so far survives an interrupted suite
            finished.append(r)
            write_json(args.out / f"{NAME}.partial.json", {**doc, "rows": finished, "partial": True})
        print(
            f"  {task.name} ({r['features']}): {r['status']}, steps {r['steps_used']}, best {_g(r['best']['mean'])}, reference {_g(r['reference']['mean'])}, "
            f"fitness as reward {_g(r['fitness_as_reward']['mean'])}, diagnostics {r['diagnostics']}, "
            f"{r['wall_seconds']:.0f} s",
            flush=True,
        )
        return r

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            variants: list[str | None] = ["off", "on"] if args.side_by_side else [None]
            rows = list(pool.map(one, [(t, v) for v in variants for t in chosen]))
    finally:
        if args.keep:
            print(f"kept databases and artifacts under {workroot}")
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    doc["total_seconds"] = time.monotonic() - started
    doc["machine"]["load_average_at_end"] = load_average()
    if args.side_by_side:
        doc["summary_by_features"] = {
            v: summarise([r for r in rows if r["features"]["trajectory_screen"] == v]) for v in ("off", "on")
        }
        rows = [r for r in rows if r["features"]["trajectory_screen"] == "on"] + [
            {**r, "task": {**r["task"], "name": r["task"]["name"] + FEATURES_OFF}}
            for r in rows
            if r["features"]["trajectory_screen"] == "off"
        ]
    return finish(doc, rows, args.out)


if __name__ == "__main__":
    main()
