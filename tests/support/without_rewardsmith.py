"""Run a Python script as on a machine where rewardsmith is not installed: none of its packages can be imported.

    python -E -s tests/support/without_rewardsmith.py SCRIPT [ARGS...]

An import hook refuses rewardsmith's top-level packages (app, envs, workers, prompts, tests,
benchmarks) whatever path or editable install would find them, the repository leaves sys.path,
and SCRIPT runs as ``__main__`` with its own folder first on sys.path, as ``python SCRIPT`` would.
"""

from __future__ import annotations

import importlib.abc
import os
import runpy
import sys
from pathlib import Path

BLOCKED = frozenset({"app", "envs", "workers", "prompts", "tests", "benchmarks"})
REPOSITORY = Path(__file__).resolve().parents[2]


class NoRewardsmith(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (rewardsmith is not installed here)", name=name)
        return None


def main() -> None:
    sys.meta_path.insert(0, NoRewardsmith())
    for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
        del sys.modules[name]
    script = Path(sys.argv[1]).resolve()
    rest = [
        p
        for p in sys.path[1:]
        if p and Path(p).resolve() != REPOSITORY and not Path(p).resolve().is_relative_to(REPOSITORY / "tests")
    ]
    sys.path[:] = [str(script.parent), *rest]
    sys.argv = [str(script), *sys.argv[2:]]
    os.chdir(script.parent)
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
