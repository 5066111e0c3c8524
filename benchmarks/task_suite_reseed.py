"""More fresh seeds for a task-suite result: each row's best reward and both baselines trained on the seeds after those
the row has, then every row judged again.

With 3 fresh seeds the suite's strict count (best ≥ better baseline) moves with reruns of the same code: PPO here
scatters by a few per cent between seeds. This adds seeds to what a stored run delivered, without searching again:
the rewards are the ones the run chose, so the figures stay those of that run. The rows of one task share the
baselines' trainings (side-by-side rows ran the same seeds), and identical best rewards share theirs.

    .venv/bin/python benchmarks/task_suite_reseed.py benchmarks/results/task_suite_side_by_side.json \\
        --fresh-seeds 5 --parallel 2 --name task_suite_side_by_side_5_seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, load_average
from benchmarks.task_suite import FEATURES_OFF, TASKS, SuiteTask, _commit, finish, summarise, train_from_scratch

FINAL_SEED_OFFSET = 1000
"""As the run's own final seeds: the task's seed + 1000 + i."""


def baseline_codes(task: SuiteTask) -> dict[str, str]:
    """The reference reward and the fitness as reward of ``task``, as its run trained them."""
    from app.search.rules.budget import baseline_programs
    from app.search.rules.states import Origin

    names = {Origin.BASELINE_REFERENCE: "reference", Origin.BASELINE_SPARSE: "fitness_as_reward"}
    return {names[origin]: code for origin, code in baseline_programs(task.env, "custom", task.fitness)}


def train_once(task: SuiteTask, code: str, seed: int, timesteps: int, options: dict, workdir: Path) -> float | None:
    """``code`` trained from scratch on ``seed`` for ``timesteps``: the mean fitness of its evaluation, or None."""
    from app.config import Settings

    settings = Settings(
        _env_file=None, data_dir=workdir, database_url=f"sqlite:///{workdir / 'unused.sqlite3'}", broker_url=None
    )
    return train_from_scratch(task, code, seed, timesteps, options, workdir / "training", settings.sandbox_limits())


def rejudge(row: dict, task: SuiteTask, added: dict[str, list[float | None]], seeds: list[int]) -> dict:
    """``row`` with ``added`` (per series: the new seeds' fitness) appended and its verdicts computed again."""
    row = {**row, "fresh_seeds": [*row["fresh_seeds"], *seeds]}
    for series, values in added.items():
        before = row[series]
        per_seed = [*(before.get("per_seed") or []), *values]
        mean = (
            statistics.fmean([x for x in per_seed if x is not None]) if any(x is not None for x in per_seed) else None
        )
        row[series] = {**before, "per_seed": per_seed, "mean": mean}
    means = [row[s]["mean"] for s in ("reference", "fitness_as_reward") if row[s].get("mean") is not None]
    best = row["best"]["mean"]
    row["better_baseline"] = max(means, default=None)
    row["beats_better_baseline"] = best is not None and bool(means) and best >= max(means)
    row["success"] = best is not None and best >= task.threshold
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path, help="a JSON that benchmarks/task_suite.py wrote")
    ap.add_argument("--fresh-seeds", type=int, required=True, help="seeds each row has afterwards (more than now)")
    ap.add_argument("--parallel", type=int, default=2, help="trainings at once")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", required=True, help="the new JSON's and plot's file name")
    args = ap.parse_args(argv)
    doc = json.loads(args.result.read_text())
    by_name = {t.name: t for t in TASKS}
    seed = int(doc["settings"].get("seed") or 0)
    options = dict(doc["settings"].get("train_options") or {})
    jobs: dict[tuple[str, str, int], tuple[SuiteTask, int]] = {}  # (task, code, seed) -> what to train
    wanted: list[tuple[dict, SuiteTask, dict[str, str], list[int]]] = []
    for row in doc["rows"]:
        task = by_name.get(row["task"]["name"].removesuffix(FEATURES_OFF))
        if task is None or task.robot:
            sys.exit(f"{row['task']['name']}: not a built-in task of this suite; drop its row or run it again")
        have = len(row["fresh_seeds"])
        seeds = [seed + FINAL_SEED_OFFSET + i for i in range(have, args.fresh_seeds)]
        if not seeds:
            sys.exit(f"{row['task']['name']} already has {have} fresh seeds; ask for more than that")
        codes = {"best": row["best_code"], **baseline_codes(task)}
        for code in codes.values():
            for s in seeds:
                jobs.setdefault((task.name, code, s), (task, int(row["timesteps"])))
        wanted.append((row, task, codes, seeds))
    print(f"{len(jobs)} trainings ({len(wanted)} rows, {args.fresh_seeds} fresh seeds each), {args.parallel} at once")
    started = time.monotonic()
    workroot = Path(tempfile.mkdtemp(prefix="rewardsmith-reseed-"))
    keys = sorted(jobs, key=lambda k: "Humanoid" not in jobs[k][0].env)  # the longest trainings first

    def one(key: tuple[str, str, int]) -> float | None:
        task, timesteps = jobs[key]
        work = workroot / str(keys.index(key))
        work.mkdir(parents=True)
        value = train_once(task, key[1], key[2], timesteps, options, work)
        print(f"  {key[0]} seed {key[2]}: {value}", flush=True)
        return value

    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        fitness = dict(zip(keys, pool.map(one, keys), strict=True))
    rows = [
        rejudge(row, task, {s: [fitness[(task.name, code, x)] for x in seeds] for s, code in codes.items()}, seeds)
        for row, task, codes, seeds in wanted
    ]
    out = {k: v for k, v in doc.items() if k not in ("rows", "summary", "table")}
    out["settings"] = {**doc["settings"], "fresh_seeds": args.fresh_seeds}
    out["reseeded"] = {
        "from": str(args.result),
        "commit": _commit(),
        "trainings": len(jobs),
        "seconds": time.monotonic() - started,
        "load_average_at_end": load_average(),
    }
    if "summary_by_features" in doc:
        out["summary_by_features"] = {
            v: summarise([r for r in rows if r["task"]["name"].endswith(FEATURES_OFF) == (v == "off")])
            for v in ("off", "on")
        }
    return finish(out, rows, args.out, args.name)


if __name__ == "__main__":
    main()
