"""The final evaluation's episodes kept as ``trajectories.npz``: state rows, actions and fitness per episode.

A later candidate's reward is screened on them before it trains (``workers.engine.screen``): does it prefer the
episodes that the fitness prefers? The file is bounded (``MAX_ROWS`` rows per episode, taken at an even stride, and
``MAX_BYTES`` in all) and plain arrays only: it is read with ``allow_pickle=False``, inside a sandbox, and checked
for shape and finiteness before use.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.capture import Layout
from workers.engine.result import SavedFileError
from workers.engine.rollout import Episode

TRAJECTORIES_FILE = "trajectories.npz"
"""Written next to result.json by every training that reaches its final evaluation."""
MAX_ROWS = 250
"""Rows kept per episode: a longer episode keeps every k-th row (its stride), a 1,000-step one every 4th."""
MAX_EPISODES = 16
"""Episodes kept per training."""
MAX_BYTES = 8 * 1024 * 1024
"""The most one file may hold, unpacked; the stride grows until it fits."""
MEMBERS = frozenset({"rows", "actions", "lengths", "strides", "steps", "terminated", "fitness", "seeds"})


@dataclass(frozen=True)
class Trajectory:
    """One recorded episode: its rows (every ``stride``-th step), actions, true length, end, and fitness."""

    rows: np.ndarray
    actions: np.ndarray
    stride: int
    steps: int
    terminated: bool
    fitness: float
    seed: int


def _stride(length: int, row_bytes: int, episodes: int) -> int:
    stride = max(1, -(-length // MAX_ROWS))
    while episodes * -(-length // stride) * row_bytes > MAX_BYTES:
        stride += 1
    return stride


def write_trajectories(path: Path, episodes: list[Episode], fitness: list[float]) -> str:
    """Write the first ``MAX_EPISODES`` of ``episodes`` with their fitness to ``path``; returns the file's name."""
    kept = list(zip(episodes, fitness, strict=True))[:MAX_EPISODES]
    if not kept:
        raise ValueError("no episodes to keep")
    width, act = kept[0][0].rows.shape[1], kept[0][0].actions.shape[1]
    longest = max(len(ep.rows) for ep, _ in kept)
    stride = _stride(longest, 4 * (width + act), len(kept))
    t = -(-longest // stride)
    rows = np.zeros((len(kept), t, width), dtype=np.float32)
    actions = np.zeros((len(kept), t, act), dtype=np.float32)
    lengths = np.zeros(len(kept), dtype=np.int64)
    for i, (ep, _) in enumerate(kept):
        r, a = ep.rows[::stride], ep.actions[::stride]
        rows[i, : len(r)], actions[i, : len(a)], lengths[i] = r, a, len(r)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        rows=rows,
        actions=actions,
        lengths=lengths,
        strides=np.full(len(kept), stride, dtype=np.int64),
        steps=np.array([len(ep.rows) for ep, _ in kept], dtype=np.int64),
        terminated=np.array([ep.terminated for ep, _ in kept], dtype=bool),
        fitness=np.array([f for _, f in kept], dtype=np.float64),
        seeds=np.array([ep.seed for ep, _ in kept], dtype=np.int64),
    )
    path.write_bytes(buffer.getvalue())
    return path.name


def _refuse(path: Path, why: str) -> SavedFileError:
    return SavedFileError(f"{path.name} of an earlier training {why}; it was not used for the screen")


def read_trajectories(path: Path, layout: Layout, act_dim: int) -> list[Trajectory]:
    """The episodes of a ``trajectories.npz``, checked against this env's row layout; nothing is unpickled."""
    if path.stat().st_size > MAX_BYTES:
        raise _refuse(path, f"is over {MAX_BYTES // 2**20} MiB")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if sum(i.file_size for i in infos) > MAX_BYTES + 64 * 1024:
                raise _refuse(path, f"unpacks to over {MAX_BYTES // 2**20} MiB")
            names = {i.filename.removesuffix(".npy") for i in infos}
        if names != MEMBERS:
            raise _refuse(path, f"does not hold exactly the arrays {sorted(MEMBERS)}")
        with np.load(path, allow_pickle=False) as data:
            a = {name: np.asarray(data[name]) for name in MEMBERS}
    except SavedFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise _refuse(path, f"is not a trajectories file ({type(err).__name__})") from None
    e = len(a["lengths"])
    rows, actions = a["rows"], a["actions"]
    if not (
        0 < e <= MAX_EPISODES
        and rows.ndim == 3
        and rows.shape[0] == e
        and rows.shape[2] == layout.size
        and actions.shape == (e, rows.shape[1], act_dim)
        and all(a[k].shape == (e,) for k in ("strides", "steps", "terminated", "fitness", "seeds"))
    ):
        raise _refuse(path, f"does not hold episodes of this env's rows ({layout.size} columns) and actions")
    if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(actions)) and np.all(np.isfinite(a["fitness"]))):
        raise _refuse(path, "holds values that are not finite")
    lengths, strides = a["lengths"].astype(np.int64), a["strides"].astype(np.int64)
    if np.any(lengths < 1) or np.any(lengths > rows.shape[1]) or np.any(strides < 1):
        raise _refuse(path, "has episode lengths that do not fit its arrays")
    return [
        Trajectory(
            rows[i, : lengths[i]].astype(np.float64),
            actions[i, : lengths[i]],
            int(strides[i]),
            int(a["steps"][i]),
            bool(a["terminated"][i]),
            float(a["fitness"][i]),
            int(a["seeds"][i]),
        )
        for i in range(e)
    ]
