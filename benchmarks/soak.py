"""Soak under faults: N runs, each with SIGKILLs at random points, counting lost and duplicated work and the seconds
to recover.

Issue 23: "A soak benchmark repeats that cycle many times and reports lost and duplicated work and the seconds to
recover. Target: 0 lost and 0 duplicated over 20 cycles."

One cycle: submit a tiny task (offline designer, one iteration of two candidates of 2,048 steps), kill parts of the
installation with SIGKILL at random moments (the kinds dealt in shuffled rounds, so that each comes up as often), start again what was killed, wait for the run to end,
judge it. The installations are the chaos test's (tests/support/chaos.py): embedded (`serve` with its workers on
SQLite) and production (`serve --no-embedded-worker`, a `rewardsmith worker`, and a Redis and a PostgreSQL of
this script's own on free ports; the machine's shared servers are never touched). With ``--config both`` (the
default) the cycles alternate between the two.

- lost: a candidate whose training never succeeded, or a run that did not succeed;
- duplicated: a candidate trained more than once, or an attempt directory beside the recorded one;
- unreadable: an artifact that cannot be fetched or parsed through the API;
- left running: a process of what was killed still alive 10 s after the kill;
- recovered: seconds from the kill until a training's sandbox is at work again (serve, worker, sandbox), or the API
  answers /readyz again (redis, postgres, and `serve` in the production configuration, where it runs no training).

    .venv/bin/python benchmarks/soak.py                     # 20 cycles, 2 faults each, both configurations
    .venv/bin/python benchmarks/soak.py --quick             # 2 cycles, to validate
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, load_average, machine_info, percentile, pyplot, save_figure, write_outputs
from tests.support.chaos import Installation, wait_until
from tests.support.faults import EMBEDDED_FAULTS, PRODUCTION_FAULTS, inject, judge

NAME = "soak"


class Deck:
    """The fault kinds of a configuration, dealt in shuffled rounds: every kind comes up as often as the others."""

    def __init__(self, kinds: tuple[str, ...], rng: random.Random) -> None:
        self.kinds, self.rng = kinds, rng
        self.left: list[str] = []

    def deal(self) -> str:
        if not self.left:
            self.left = self.rng.sample(self.kinds, len(self.kinds))
        return self.left.pop()


def cycle(inst: Installation, rng: random.Random, deck: Deck, faults_per_cycle: int) -> dict:
    """One run under ``faults_per_cycle`` faults from ``deck``, each at a random moment, judged."""
    planned = [deck.deal() for _ in range(faults_per_cycle)]
    started = time.monotonic()
    run_id = inst.submit()
    faults = []
    for kind in planned:
        fault = inject(inst, run_id, kind, rng)
        if fault is None:  # the run ended first: that fault did not happen
            break
        faults.append(fault)
    wait_until(lambda: inst.run_status(run_id) not in ("queued", "running"), 300, f"run {run_id} to end")
    verdict = judge(inst, run_id)
    return {
        "config": "production" if inst.production else "embedded",
        "run_id": run_id,
        "status": verdict.status,
        "seconds": round(time.monotonic() - started, 1),
        "candidates": verdict.candidates,
        "training_attempts": verdict.attempts,
        "lost": verdict.lost,
        "duplicated": verdict.duplicated,
        "unreadable": verdict.unreadable,
        "faults": [
            {
                "kind": f.kind,
                "detail": f.detail,
                "recovered_seconds": round(f.recovered_seconds or 0.0, 2),
                "left_running": [f"{pid}: {cmd}" for pid, cmd in f.left_running.items()],
            }
            for f in faults
        ],
        "faults_not_injected": planned[len(faults) :],
        "load_average": load_average(),
    }


def summary(cycles: list[dict]) -> dict:
    faults = [f for c in cycles for f in c["faults"]]
    by_kind: dict[str, list[float]] = {}
    for f in faults:
        by_kind.setdefault(f["kind"], []).append(f["recovered_seconds"])
    return {
        "cycles": len(cycles),
        "runs_succeeded": sum(c["status"] == "succeeded" for c in cycles),
        "faults_injected": len(faults),
        "lost": sum(len(c["lost"]) + (c["status"] != "succeeded") for c in cycles),
        "duplicated": sum(len(c["duplicated"]) for c in cycles),
        "unreadable": sum(len(c["unreadable"]) for c in cycles),
        "left_running": sum(len(f["left_running"]) for f in faults),
        "recovered_seconds": {
            kind: {
                "n": len(xs),
                "median": percentile(xs, 50),
                "p90": percentile(xs, 90),
                "max": max(xs),
            }
            for kind, xs in sorted(by_kind.items())
        },
        "cycle_seconds_median": percentile([c["seconds"] for c in cycles], 50),
    }


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    kinds = sorted({f["kind"] for c in doc["cycles"] for f in c["faults"]})
    for i, kind in enumerate(kinds):
        xs = [f["recovered_seconds"] for c in doc["cycles"] for f in c["faults"] if f["kind"] == kind]
        left.scatter([i + random.uniform(-0.15, 0.15) for _ in xs], xs, s=18, alpha=0.7)
    left.set_xticks(range(len(kinds)), kinds)
    left.set_ylabel("seconds from the SIGKILL until work goes on")
    left.set_title("recovery per fault")
    s = doc["summary"]
    bars = {k: s[k] for k in ("lost", "duplicated", "unreadable", "left_running")}
    drawn = right.bar(list(bars), list(bars.values()), color=["tab:red", "tab:orange", "tab:purple", "tab:gray"])
    right.bar_label(drawn)
    right.set_ylim(0, max(1, *bars.values()) + 0.5)
    right.set_title(f"{s['runs_succeeded']}/{s['cycles']} runs succeeded, {s['faults_injected']} faults")
    quick = "QUICK — " if doc["quick"] else ""
    fig.suptitle(f"{quick}soak under SIGKILL: {doc['args']['config']} configuration(s)")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--faults-per-cycle", type=int, default=2)
    parser.add_argument("--config", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="2 cycles: to validate the script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cycles_wanted = 2 if args.quick else args.cycles
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    doc: dict = {"name": NAME, "quick": args.quick, "seed": seed, "args": vars(args) | {"out": str(args.out)}}
    doc["machine"] = machine_info()
    configs = {"embedded": [False], "production": [True], "both": [False, True]}[args.config]
    root = Path(tempfile.mkdtemp(prefix="rewardsmith-soak-"))
    root.chmod(0o755)  # the postgres user reaches its cluster through it
    installations = [Installation(root / ("production" if p else "embedded"), production=p) for p in configs]
    decks = [Deck(PRODUCTION_FAULTS if p else EMBEDDED_FAULTS, rng) for p in configs]
    cycles: list[dict] = []
    try:
        for inst in installations:
            inst.start()
        for i in range(cycles_wanted):
            inst, deck = installations[i % len(installations)], decks[i % len(installations)]
            result = cycle(inst, rng, deck, args.faults_per_cycle)
            cycles.append(result)
            kinds = ", ".join(f"{f['kind']} {f['recovered_seconds']:.1f} s" for f in result["faults"])
            print(
                f"cycle {i + 1}/{cycles_wanted} [{result['config']}] {result['status']} in {result['seconds']:.0f} s; "
                f"faults: {kinds or 'none'}; lost {len(result['lost'])}, duplicated {len(result['duplicated'])}, "
                f"unreadable {len(result['unreadable'])}; load {result['load_average']}",
                flush=True,
            )
        for inst in installations:
            inst.stop()
        time.sleep(2)
        doc["left_after_stop"] = {str(pid): cmd for inst in installations for pid, cmd in inst.leftovers().items()}
    finally:
        for inst in installations:
            inst.kill_everything()
        shutil.rmtree(root, ignore_errors=True)
    doc["cycles"] = cycles
    doc["summary"] = summary(cycles)
    doc["machine"]["load_average_at_end"] = load_average()
    s = doc["summary"]
    print(
        f"\n{s['cycles']} cycles, {s['faults_injected']} faults (seed {seed}): {s['runs_succeeded']} runs succeeded; "
        f"lost {s['lost']}, duplicated {s['duplicated']}, unreadable {s['unreadable']}, left running "
        f"{s['left_running']} (+{len(doc['left_after_stop'])} after the stop)"
    )
    for kind, r in s["recovered_seconds"].items():
        print(
            f"  {kind:9s} recovered in median {r['median']:.1f} s, p90 {r['p90']:.1f} s, max {r['max']:.1f} s (n={r['n']})"
        )
    write_outputs(args.out, NAME, doc, plot)


if __name__ == "__main__":
    main()
