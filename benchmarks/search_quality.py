"""Search quality on HalfCheetah-v5 forward running: the offline designer's best vs the reference reward, and
successive halving's compute saved against quality lost.

Issue: "on HalfCheetah-v5 forward running, the offline designer's best against the reference reward at equal
training budget (normalized score, several seeds), and successive halving's compute saved against quality lost.
A plot and JSON."

For each seed, two searches run in this process (``app.search.service.run_local``, the offline designer, a
fresh SQLite database each, so both searches of a seed start from the same first-round candidates):
  full — every candidate trained to the full budget;
  SH   — options {"successive_halving": True}: every candidate is screened at screen_fraction of the budget and
         the better half continues (resumed) to the full budget.
Both runs train their own baselines ({"baselines": True}): the env's reference reward and the fitness-as-reward
("sparse"), at the same budget and seed, so run.final["normalized_score"] = (F_best - F_sparse) / (F_reference -
F_sparse). Compute is counted from the trainings themselves (steps actually trained, resumed steps not counted
twice) and also shown as run.usage["timesteps_trained"].

    .venv/bin/python benchmarks/search_quality.py            # 3 seeds x (full, SH), ~20-40 min on 2 cores
    .venv/bin/python benchmarks/search_quality.py --quick    # 1 seed, tiny budgets, to validate
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, machine_info, median, pyplot, save_figure, write_outputs

NAME = "search_quality"
DEFAULTS = {
    "seeds": 3,
    "iterations": 3,
    "samples": 4,
    "timesteps": 30_000,
    "final_seeds": 0,
    "train_options": {"eval_episodes": 3},
}
QUICK = {
    "seeds": 1,
    "iterations": 1,
    "samples": 2,
    "timesteps": 4_096,
    "final_seeds": 0,
    "train_options": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2},
}
# --quick uses 4,096 (not 2,048) steps: PPO rounds every training up to a whole rollout (n_envs x n_steps = 2,048
# on HalfCheetah), so with 2,048 the screening would already be the full budget and halving could not save anything.


def steps_of(t) -> int:
    """Env steps a training actually ran (a resumed training counts only what it added)."""
    r = t.result or {}
    return max(0, int(r.get("timesteps") or 0) - int(r.get("resumed_from_timesteps") or 0))


def one_search(*, env: str, description: str, fitness: str, seed: int, halving: bool, args, workroot: Path) -> dict:
    from app.config import Settings
    from app.db import session_scope
    from app.db.models import Run, Training
    from app.search.service import LocalRun, TaskSpec, run_local

    label = "sh" if halving else "full"
    data = workroot / f"seed{seed}-{label}"
    data.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data / 'search.sqlite3'}"
    settings = Settings(_env_file=None, data_dir=data, database_url=url, broker_url=None)
    options = {
        "baselines": True,
        "final_seeds": args.final_seeds,
        "successive_halving": halving,
        "screen_fraction": args.screen_fraction,
        "train": dict(args.train_options),
    }
    spec = TaskSpec.parse(
        {
            "env": env,
            "description": description,
            "fitness": fitness,
            "designer": "offline",
            "iterations": args.iterations,
            "samples": args.samples,
            "timesteps": args.timesteps,
            "seed": seed,
            "options": options,
        }
    )
    done = [-1]
    t0 = time.monotonic()

    def progress(local: LocalRun) -> None:
        run_id = local.run_id
        with session_scope(local.sf) as s:
            finished = (
                s.query(Training)
                .filter(Training.run_id == run_id, Training.status.not_in(("queued", "running")))
                .count()
            )
            total = s.query(Training).filter(Training.run_id == run_id).count()
        if finished != done[0]:
            done[0] = finished
            print(
                f"    [{label} seed {seed}] {finished}/{total} trainings done, {time.monotonic() - t0:.0f} s",
                flush=True,
            )

    local = run_local(spec, settings, max_parallel=args.parallel, on_tick=progress)
    status, sf, run_id = local.status, local.sf, local.run_id
    wall = time.monotonic() - t0

    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        final = dict(run.final or {})
        usage = dict(run.usage or {})
        steps = {"search": 0, "screen": 0, "full": 0, "baseline": 0, "final": 0}
        learn_seconds = 0.0
        trainings = list(s.query(Training).filter(Training.run_id == run_id).order_by(Training.id))
        for t in trainings:
            n = steps_of(t)
            steps[t.purpose] = steps.get(t.purpose, 0) + n
            if t.purpose in ("screen", "full"):
                steps["search"] += n
            learn_seconds += float((t.result or {}).get("learn_seconds") or 0.0)
        candidates = []
        for c in sorted(run.candidates, key=lambda c: c.id):
            candidates.append(
                {
                    "id": c.id,
                    "iteration": c.iteration.index if c.iteration is not None else None,
                    "origin": c.origin,
                    "status": c.status,
                    "fitness": c.fitness,
                    "error": (c.error or "")[:300] or None,
                    "trainings": [
                        {
                            "purpose": t.purpose,
                            "status": t.status,
                            "timesteps": t.timesteps,
                            "steps_trained": steps_of(t),
                            "fitness": ((t.result or {}).get("fitness") or {}).get("mean"),
                        }
                        for t in c.trainings
                    ],
                }
            )
        best = next((c for c in candidates if c["id"] == run.best_candidate_id), None)
        base = final.get("baselines") or {}
        out = {
            "seed": seed,
            "successive_halving": halving,
            "status": status,
            "error": run.error,
            "wall_seconds": wall,
            "learn_seconds_sum": learn_seconds,
            "best_fitness": best["fitness"] if best else None,
            "best_candidate": best,
            "best_trained_to_full_budget": bool(
                best and any(t["purpose"] == "full" and t["status"] == "ok" for t in best["trainings"])
            ),
            "reference_fitness": base.get("reference"),
            "sparse_fitness": base.get("sparse"),
            "normalized_score": final.get("normalized_score"),
            "final": final,
            "usage_timesteps_trained": usage.get("timesteps_trained"),
            "steps_trained": steps,
            "trainings": len(trainings),
            "candidates": candidates,
        }
    local.close()
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return out


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def summarise(per_seed: list[dict]) -> dict:
    rows = []
    for p in per_seed:
        f, h = p["full"], p["sh"]
        full_steps, sh_steps = f["steps_trained"]["search"], h["steps_trained"]["search"]
        rows.append(
            {
                "seed": p["seed"],
                "compute_saved": 1 - sh_steps / full_steps if full_steps else None,
                "compute_saved_usage": (
                    1 - h["usage_timesteps_trained"] / f["usage_timesteps_trained"]
                    if f["usage_timesteps_trained"]
                    else None
                ),
                "wall_saved": 1 - h["wall_seconds"] / f["wall_seconds"] if f["wall_seconds"] else None,
                "best_fitness_lost": (
                    f["best_fitness"] - h["best_fitness"]
                    if f["best_fitness"] is not None and h["best_fitness"] is not None
                    else None
                ),
                "normalized_score_lost": (
                    f["normalized_score"] - h["normalized_score"]
                    if f["normalized_score"] is not None and h["normalized_score"] is not None
                    else None
                ),
            }
        )
    full_scores = [p["full"]["normalized_score"] for p in per_seed]
    sh_scores = [p["sh"]["normalized_score"] for p in per_seed]

    def over_reference(r: dict) -> float | None:
        best, ref = r["best_fitness"], r["reference_fitness"]
        return best / ref if best is not None and ref and ref > 0 else None

    return {
        "per_seed": rows,
        # The plain ratio to the reference reward's fitness: the normalized score is ill-conditioned whenever the
        # reference and the fitness-as-reward baselines reach about the same fitness (forward running: they do).
        "best_over_reference_full": [over_reference(p["full"]) for p in per_seed],
        "best_over_reference_sh": [over_reference(p["sh"]) for p in per_seed],
        "best_over_reference_full_mean": _mean([over_reference(p["full"]) for p in per_seed]),
        "best_over_reference_sh_mean": _mean([over_reference(p["sh"]) for p in per_seed]),
        "reference_minus_sparse": [
            p["full"]["reference_fitness"] - p["full"]["sparse_fitness"]
            if p["full"]["reference_fitness"] is not None and p["full"]["sparse_fitness"] is not None
            else None
            for p in per_seed
        ],
        "normalized_score_full_mean": _mean(full_scores),
        "normalized_score_full_median": median([x for x in full_scores if x is not None]),
        "normalized_score_sh_mean": _mean(sh_scores),
        "best_fitness_full_mean": _mean([p["full"]["best_fitness"] for p in per_seed]),
        "best_fitness_sh_mean": _mean([p["sh"]["best_fitness"] for p in per_seed]),
        "reference_fitness_mean": _mean([p["full"]["reference_fitness"] for p in per_seed]),
        "sparse_fitness_mean": _mean([p["full"]["sparse_fitness"] for p in per_seed]),
        "compute_saved_mean": _mean([r["compute_saved"] for r in rows]),
        "wall_saved_mean": _mean([r["wall_saved"] for r in rows]),
        "best_fitness_lost_mean": _mean([r["best_fitness_lost"] for r in rows]),
        "normalized_score_lost_mean": _mean([r["normalized_score_lost"] for r in rows]),
        "runs_not_succeeded": [
            f"seed {p['seed']} {k}: {p[k]['status']}"
            for p in per_seed
            for k in ("full", "sh")
            if p[k]["status"] != "succeeded"
        ],
    }


def _fmt(x, spec=".3f") -> str:
    return "—" if x is None else format(x, spec)


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    per_seed, s = doc["per_seed"], doc["summary"]
    seeds = [p["seed"] for p in per_seed]
    idx = list(range(len(seeds)))
    w = 0.38
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))

    ax = axes[0]
    nan = float("nan")  # no bar where a run gave no score
    full = [nan if p["full"]["normalized_score"] is None else p["full"]["normalized_score"] for p in per_seed]
    sh = [nan if p["sh"]["normalized_score"] is None else p["sh"]["normalized_score"] for p in per_seed]
    ax.bar([i - w / 2 for i in idx], full, w, label="full search", color="#1f77b4")
    ax.bar([i + w / 2 for i in idx], sh, w, label="successive halving", color="#ff7f0e")
    ax.axhline(1.0, color="k", lw=1, ls="--", label="reference reward (= 1)")
    ax.axhline(0.0, color="#888888", lw=1, ls=":", label="fitness as reward (sparse, = 0)")
    ax.set_xticks(idx)
    ax.set_xticklabels([f"seed {x}" for x in seeds])
    ax.set_ylabel("normalized score (F − F_sparse) / (F_ref − F_sparse)")
    ax.set_title(
        f"normalized score: mean full {_fmt(s['normalized_score_full_mean'], '.2f')}, "
        f"SH {_fmt(s['normalized_score_sh_mean'], '.2f')}"
    )
    ax.legend(fontsize=8)

    ax = axes[1]
    for key, color, label in (("full", "#1f77b4", "full best"), ("sh", "#ff7f0e", "SH best")):
        ax.scatter(
            idx,
            [p[key]["best_fitness"] for p in per_seed],
            color=color,
            label=label,
            zorder=3,
            marker="o" if key == "full" else "s",
        )
    ax.scatter(
        idx,
        [p["full"]["reference_fitness"] for p in per_seed],
        color="k",
        marker="_",
        s=400,
        label="reference (full run)",
    )
    ax.scatter(
        idx,
        [p["full"]["sparse_fitness"] for p in per_seed],
        color="#888888",
        marker="_",
        s=400,
        label="sparse (full run)",
    )
    ax.set_xticks(idx)
    ax.set_xticklabels([f"seed {x}" for x in seeds])
    ax.set_ylabel(f"fitness ({doc['settings']['fitness']})")
    ax.set_title("best fitness vs the baselines, equal budget and seed")
    ax.legend(fontsize=8)

    ax = axes[2]
    fs = [p["full"]["steps_trained"]["search"] / 1e3 for p in per_seed]
    hs = [p["sh"]["steps_trained"]["search"] / 1e3 for p in per_seed]
    ax.bar([i - w / 2 for i in idx], fs, w, label="full search", color="#1f77b4")
    ax.bar([i + w / 2 for i in idx], hs, w, label="successive halving", color="#ff7f0e")
    for i, r in zip(idx, s["per_seed"], strict=False):
        ax.annotate(
            f"saved {_fmt(r['compute_saved'], '.0%')}\nscore lost {_fmt(r['normalized_score_lost'], '+.2f')}",
            (i, max(fs[i], hs[i])),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylim(0, max(fs + hs + [1e-3]) * 1.25)
    ax.set_xticks(idx)
    ax.set_xticklabels([f"seed {x}" for x in seeds])
    ax.set_ylabel("candidate env steps trained, thousands (baselines excluded)")
    ax.set_title(
        f"compute saved {_fmt(s['compute_saved_mean'], '.0%')} vs score lost "
        f"{_fmt(s['normalized_score_lost_mean'], '+.3f')} (mean)"
    )
    ax.legend(fontsize=8, loc="lower right")
    st = doc["settings"]
    mode = " (QUICK: validation only)" if st["quick"] else ""
    fig.suptitle(
        f"{st['env']} '{st['description']}', offline designer: {st['iterations']} iterations × {st['samples']} "
        f"samples × {st['timesteps']:,} steps; {doc['machine']['cpu_count']} CPUs{mode}",
        fontsize=10,
    )
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--env", default="HalfCheetah-v5")
    ap.add_argument("--description", default="make the cheetah run forward as fast as it can")
    ap.add_argument("--fitness", default="forward_distance")
    ap.add_argument("--seeds", type=int, help=f"seeds 0..N-1 (default {DEFAULTS['seeds']})")
    ap.add_argument("--iterations", type=int, help=f"default {DEFAULTS['iterations']}")
    ap.add_argument("--samples", type=int, help=f"candidates per iteration (default {DEFAULTS['samples']})")
    ap.add_argument("--timesteps", type=int, help=f"budget of each training (default {DEFAULTS['timesteps']:,})")
    ap.add_argument("--final-seeds", type=int, help="re-evaluations of the best on more seeds (default 0)")
    ap.add_argument(
        "--train-options",
        type=json.loads,
        help=f"JSON of training options (default {json.dumps(DEFAULTS['train_options'], allow_nan=False)})",
    )
    ap.add_argument("--screen-fraction", type=float, default=0.25, help="successive halving's screening budget")
    ap.add_argument("--parallel", type=int, default=None, help="parallel trainings (default: the CPU count)")
    ap.add_argument("--keep", action="store_true", help="keep the databases and artifacts (printed path)")
    ap.add_argument("--report", type=Path, help="only summarise and plot a JSON this script wrote earlier")
    ap.add_argument("--quick", action="store_true", help=f"validate: {QUICK}")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON and PNG")
    args = ap.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()), args.out)
        return
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    doc: dict = {
        "benchmark": NAME,
        "issue": "offline designer's best vs the reference reward at equal budget (normalized score, several seeds); "
        "successive halving's compute saved vs quality lost",
        "settings": {
            "env": args.env,
            "description": args.description,
            "fitness": args.fitness,
            "designer": "offline",
            "seeds": list(range(args.seeds)),
            "iterations": args.iterations,
            "samples": args.samples,
            "timesteps": args.timesteps,
            "final_seeds": args.final_seeds,
            "train_options": args.train_options,
            "screen_fraction": args.screen_fraction,
            "parallel": args.parallel,
            "quick": args.quick,
        },
        "machine": machine_info(),
    }
    print(
        f"{NAME}: {args.env} '{args.description}', offline designer, seeds {doc['settings']['seeds']}: "
        f"{args.iterations} iterations x {args.samples} samples x {args.timesteps:,} steps, train options "
        f"{args.train_options}, final_seeds {args.final_seeds}"
    )
    print(
        f"machine: {doc['machine']['cpu_count']} CPUs ({doc['machine']['cpu_model']}), load {doc['machine']['load_average_at_start']}"
    )
    workroot = Path(tempfile.mkdtemp(prefix="rewardsmith-search-bench-"))
    per_seed = []
    started = time.monotonic()
    try:
        for seed in range(args.seeds):
            row = {"seed": seed}
            for key, halving in (("full", False), ("sh", True)):
                print(f"  seed {seed}: {'successive halving' if halving else 'full search'} ...", flush=True)
                r = one_search(
                    env=args.env,
                    description=args.description,
                    fitness=args.fitness,
                    seed=seed,
                    halving=halving,
                    args=args,
                    workroot=workroot,
                )
                row[key] = r
                print(
                    f"  seed {seed} {key:>4}: {r['status']}, best {_fmt(r['best_fitness'])}, reference "
                    f"{_fmt(r['reference_fitness'])}, sparse {_fmt(r['sparse_fitness'])}, normalized "
                    f"{_fmt(r['normalized_score'])}, candidate steps {r['steps_trained']['search']:,} "
                    f"(usage.timesteps_trained {r['usage_timesteps_trained']}), {r['wall_seconds']:.0f} s"
                    + (f" — {r['error']}" if r["error"] else ""),
                    flush=True,
                )
            per_seed.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(workroot, ignore_errors=True)
        else:
            print(f"kept databases and artifacts under {workroot}")
    doc["per_seed"] = per_seed
    doc["total_seconds"] = time.monotonic() - started
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    report(doc, args.out)


def report(doc: dict, out: Path) -> None:
    """Summarise, print, and write the JSON and the plot (also from a saved JSON: --report FILE)."""
    per_seed = doc["per_seed"]
    doc["summary"] = s = summarise(per_seed)
    quick = doc["settings"]["quick"]

    print(
        f"\n{'seed':>4} {'mode':>5} {'best F':>9} {'ref F':>9} {'sparse F':>9} {'norm':>7} {'steps':>9} {'usage steps':>11} {'wall s':>7}"
    )
    for p in per_seed:
        for key in ("full", "sh"):
            r = p[key]
            print(
                f"{p['seed']:>4} {key:>5} {_fmt(r['best_fitness'], '9.3f')} {_fmt(r['reference_fitness'], '9.3f')} "
                f"{_fmt(r['sparse_fitness'], '9.3f')} {_fmt(r['normalized_score'], '7.3f')} {r['steps_trained']['search']:>9,} "
                f"{r['usage_timesteps_trained'] or 0:>11,} {r['wall_seconds']:>7.0f}"
            )
    print("\nsummary")
    print(
        f"  normalized score (offline designer's best vs the reference reward, equal budget): mean "
        f"{_fmt(s['normalized_score_full_mean'])} full search, {_fmt(s['normalized_score_sh_mean'])} with successive halving "
        "(1 = as good as the reference reward, 0 = as good as training on the fitness itself)"
    )
    print(
        f"  best fitness / reference reward's fitness (equal budget and seed): "
        f"{', '.join(_fmt(x, '.2f') for x in s['best_over_reference_full'])} full search (mean "
        f"{_fmt(s['best_over_reference_full_mean'], '.2f')}), "
        f"{', '.join(_fmt(x, '.2f') for x in s['best_over_reference_sh'])} with successive halving (mean "
        f"{_fmt(s['best_over_reference_sh_mean'], '.2f')}); reference minus sparse fitness per seed: "
        f"{', '.join(_fmt(x, '.1f') for x in s['reference_minus_sparse'])} (near 0: the normalized score is noise)"
    )
    print(
        f"  successive halving: compute saved {_fmt(s['compute_saved_mean'], '.1%')} of candidate training steps "
        f"(wall time saved {_fmt(s['wall_saved_mean'], '.1%')}), best fitness lost {_fmt(s['best_fitness_lost_mean'], '+.3f')}, "
        f"normalized score lost {_fmt(s['normalized_score_lost_mean'], '+.3f')} (mean over seeds; positive = SH worse)"
    )
    if s["runs_not_succeeded"]:
        print(f"  runs that did not succeed: {s['runs_not_succeeded']}")
    if quick:
        print("  (--quick: budgets far too small for meaningful figures; run without --quick)")
    write_outputs(out, NAME, doc, plot)


if __name__ == "__main__":
    main()
