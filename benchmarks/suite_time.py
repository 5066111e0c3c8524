"""How long a newcomer waits for the tests: `.ci/run` (the README's `make test`) in a fresh clone, install included,
then `make test-fast` in that clone, twice (the second run finds the test modules pytest rewrote the first time).

The clone is made from this checkout's HEAD into a temporary directory (nothing beside it: the venv, bytecode and
caches all start empty). Reported per command: wall seconds, the CPU seconds of its processes (those it waited for:
servers the tests start and stop are counted, PostgreSQL's and Redis's own server processes are not), its exit
status and pytest's summary line. Targets (issue 20): `make test` from a fresh clone under 600 s, `make test-fast`
under 90 s, on a 2-core machine.

.venv/bin/python benchmarks/suite_time.py [--fast-only] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _common import RESULTS, ROOT, load_average, machine_info, write_json

TARGETS = {"make test (fresh clone, install included)": 600.0, "make test-fast": 90.0}
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", re.MULTILINE)


def timed(name: str, argv: list[str], cwd: Path, log: Path) -> dict:
    """Run ``argv`` in ``cwd`` with its output in ``log``; its wall and CPU seconds, status and pytest summary."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = SUMMARY.findall(log.read_text(errors="replace"))
    row = {"command": name, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "exit": code}
    row["pytest"] = found[-1] if found else None
    target = TARGETS.get(name)
    if target is not None:
        row["target_seconds"] = target
        row["met"] = code == 0 and wall < target
    print(f"{name}: {wall:.0f} s wall, {cpu:.0f} s CPU, exit {code}; {row['pytest']}", flush=True)
    if code != 0:
        print(f"--- the end of its output:\n{log.read_text(errors='replace')[-3000:]}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast-only", action="store_true", help="only make test-fast (install included in its first)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    doc: dict = {"commit": head.stdout.strip(), "machine": machine_info(), "load_before": load_average(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="rewardsmith-suite-") as tmp:
        clone = Path(tmp) / "rewardsmith"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        logs = Path(tmp) / "logs"
        logs.mkdir()
        doc["pythondontwritebytecode"] = os.environ.get("PYTHONDONTWRITEBYTECODE")
        if args.fast_only:
            doc["runs"].append(timed("make install", ["make", "install"], clone, logs / "install.log"))
        else:
            doc["runs"].append(timed("make test (fresh clone, install included)", [".ci/run"], clone, logs / "ci.log"))
        for attempt in (1, 2):
            row = timed("make test-fast", ["make", "test-fast"], clone, logs / f"fast-{attempt}.log")
            row["attempt"] = attempt
            doc["runs"].append(row)
    write_json(args.out / "suite_time.json", doc)
    print(f"\nwrote {args.out / 'suite_time.json'}")


if __name__ == "__main__":
    main()
