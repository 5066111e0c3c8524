"""Where a batch of simulations runs: the seam between the batched env and a simulator.

``CpuBackend`` runs N MuJoCo simulations of one model on a C thread pool with the GIL
released (``mujoco.batch.Batch``: one state row per simulation, live (N, ...) NumPy views
of MjData fields, bit-identical to one MjData per simulation at any thread count).

Chosen over ``mujoco.rollout`` by measurement (benchmarks/engine_speed.py): the batch
steps in place with views, where rollout copies state in and out and records every substep.

A GPU backend is the next one (not built: no GPU was lent to this work, and no GPU code
lands untested). The plan: ``mujoco_warp`` puts the same model on the device
(``mjw.put_model``/``put_data`` with ``nworld=N``), ``mjw.step`` advances all worlds, and
``wp.to_torch`` gives zero-copy torch views of qpos, qvel, xpos, ... so that the dynamics,
the rows and the learner run on CUDA tensors. It would offer the same attributes and
methods as ``CpuBackend`` and be chosen by ``backend="warp"``, run by Celery GPU workers.
"""

from __future__ import annotations

import mujoco
import numpy as np
from mujoco.batch import Batch

BACKENDS = ("cpu",)


class CpuBackend:
    """N simulations of ``model`` stepped on ``threads`` threads; MjData fields as live (N, ...) attributes.

    qpos, qvel and ctrl are always there; derived fields only when named in ``fields`` (each bound
    field is copied out after every step, so only what is read is bound).
    """

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    xpos: np.ndarray
    xquat: np.ndarray
    xipos: np.ndarray
    site_xpos: np.ndarray
    cinert: np.ndarray
    cvel: np.ndarray
    qfrc_actuator: np.ndarray
    qfrc_constraint: np.ndarray
    cfrc_ext: np.ndarray
    sensordata: np.ndarray
    ncon: np.ndarray

    def __init__(self, model: mujoco.MjModel, n: int, threads: int, fields: tuple[str, ...]) -> None:
        self.model = model
        self.batch = Batch(model, n, max(1, threads))
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        for name in fields:  # derived fields: refreshed after every call, as after mj_step
            setattr(self, name, self.batch.bind(name))

    def step(self, nstep: int) -> None:
        """Advance every simulation by ``nstep`` calls to mj_step with the controls in ``ctrl``."""
        self.batch.step(nstep=nstep)

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset simulations ``ids`` to the model's defaults with this (k, nq) qpos and (k, nv) qvel, then
        mj_forward (as Gymnasium's reset: mj_resetData, set_state)."""
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE.value)
        self.qpos[ids] = qpos
        self.qvel[ids] = qvel
        self.batch.forward(ids)


def make_backend(name: str, model: mujoco.MjModel, n: int, threads: int, fields: tuple[str, ...]) -> CpuBackend:
    """The backend called ``name``; only 'cpu' is built (see the module docstring for the GPU plan)."""
    if name == "cpu":
        return CpuBackend(model, n, threads, fields)
    raise ValueError(f"unknown engine backend '{name}'; available: {', '.join(BACKENDS)} (a GPU backend is planned)")
