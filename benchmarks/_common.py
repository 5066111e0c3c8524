"""Shared helpers of the benchmark scripts: machine info, result files, percentiles, a non-interactive plot backend."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKAGES = (
    "torch",
    "mujoco",
    "stable-baselines3",
    "gymnasium",
    "numpy",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "httpx",
    "psycopg",
    "redis",
    "celery",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    """What the figures were measured on (read from package metadata, nothing imported)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average_at_start": load_average(),
        "started_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def finite(value: object) -> object:
    """``value`` with every NaN or infinite float (numpy's too) replaced by None: what strict JSON can hold."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    numpy_float = getattr(getattr(value, "dtype", None), "kind", "") == "f" and getattr(value, "ndim", 1) == 0
    if isinstance(value, float) or numpy_float:
        number = float(value)  # type: ignore[arg-type]
        return number if math.isfinite(number) else None
    return value


def write_json(path: Path, doc: dict) -> None:
    """Write ``doc`` atomically (a .json.tmp renamed into place) as strict JSON: a figure that is not finite is
    written as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(finite(doc), indent=2, default=float, allow_nan=False))
    tmp.replace(path)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: list[float]) -> float | None:
    return percentile(values, 50.0)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Lay out, write and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, name: str, doc: dict, plot) -> None:
    """``out/<name>.json`` and ``out/<name>.png`` (drawn by ``plot(doc, path)``), and say where they are."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", doc)
    plot(doc, out / f"{name}.png")
    print(f"\nwrote {out / (name + '.json')} and {out / (name + '.png')}")
