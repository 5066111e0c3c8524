"""The raw rows of the state view (``envs.capture.Layout``) written for a whole batch at once.

``BatchRows`` does for N envs of a batch what ``envs.capture.Recorder`` does for one
Gymnasium env: after each step it writes each env's kinematics before and after the step,
velocities, body positions before and after, site positions, contact forces, feet contacts and step index into
its row, so that ``envs.state.build_state`` gives the same view. Feet contacts come from
contact sensors the engine's model carries (``envs.model``); everything else from (N, ...)
MjData views. No loop over envs.
"""

from __future__ import annotations

import numpy as np

from envs.capture import Layout, root_pose
from envs.model import CompiledModel

ROW_FIELDS = ("xpos", "xquat", "xipos", "site_xpos", "cfrc_ext", "sensordata", "ncon")
"""Derived MjData fields the rows read (besides qpos and qvel)."""


class BatchRows:
    """Writes ``rows`` (N, layout.size) from batch views; ``restart`` envs after their reset, ``capture`` after a step.

    ``needs`` names the state fields someone will read; raw data only they use is then not
    written (as ``Recorder``). None: write everything.
    """

    def __init__(
        self, layout: Layout, compiled: CompiledModel, rows: np.ndarray, needs: frozenset[str] | None = None
    ) -> None:
        self.layout = layout
        self.rows = rows
        n, k = len(rows), layout.kin_size
        self._mass = compiled.model.body_mass[:, None].copy()
        self._feet_at = compiled.feet_sensors
        self._kin = np.zeros((n, k))
        self._last_bodies = np.zeros((n, len(layout.body_ids), 3))
        self.steps = np.zeros(n, dtype=np.int64)

        def wanted(*names: str) -> bool:
            return needs is None or any(name in needs for name in names)

        self._bodies = len(layout.body_ids) > 0 and wanted("body_positions", "body_velocities")
        self._sites = len(layout.site_ids) > 0
        self._forces = len(layout.contact_body_names) > 0 and wanted("contact_forces")
        self._feet = len(layout.foot_geoms) > 0 and wanted("feet_contact")
        self._com = layout.spec.center_of_mass and wanted("com_position", "com_x_velocity", "com_y_velocity")

    def _kinematics(self, d: object, ids: np.ndarray | slice) -> np.ndarray:
        lay, nq = self.layout, self.layout.nq
        qpos = d.qpos[ids]  # type: ignore[attr-defined]
        out = np.empty((len(qpos), lay.kin_size))
        out[:, :nq] = qpos
        out[:, nq : nq + 3], out[:, nq + 3 : nq + 7] = root_pose(lay, qpos, d.xpos[ids], d.xquat[ids])  # type: ignore[attr-defined]
        if self._com:
            out[:, nq + 7 : nq + 10] = (self._mass * d.xipos[ids]).sum(axis=1) / self._mass.sum()  # type: ignore[attr-defined]
        return out

    def restart(self, d: object, ids: np.ndarray) -> None:
        """After a reset of envs ``ids``: their reset state is the 'before' of their next step."""
        self._kin[ids] = self._kinematics(d, ids)
        if self._bodies:
            self._last_bodies[ids] = d.xpos[ids][:, self.layout.body_ids]  # type: ignore[attr-defined]
        self.steps[ids] = 0

    def capture(self, d: object) -> None:
        """Write every env's row for the step just taken (before any auto-reset)."""
        lay, rows, k = self.layout, self.rows, self.layout.kin_size
        now = self._kinematics(d, slice(None))
        rows[:, :k] = self._kin
        rows[:, k : 2 * k] = now
        self._kin = now
        rows[:, lay.qvel_at : lay.bodies_at] = d.qvel  # type: ignore[attr-defined]
        if self._bodies:
            now_bodies = d.xpos[:, lay.body_ids]  # type: ignore[attr-defined]
            rows[:, lay.bodies_at : lay.bodies_before_at] = now_bodies.reshape(len(rows), -1)
            rows[:, lay.bodies_before_at : lay.sites_at] = self._last_bodies.reshape(len(rows), -1)
            self._last_bodies = now_bodies
        if self._sites:
            rows[:, lay.sites_at : lay.forces_at] = d.site_xpos[:, lay.site_ids].reshape(len(rows), -1)  # type: ignore[attr-defined]
        if self._forces:
            rows[:, lay.forces_at : lay.feet_at] = d.cfrc_ext[:, 1:].reshape(len(rows), -1)  # type: ignore[attr-defined]
        if self._feet:
            # MuJoCo leaves contact sensors as they were when a step ends with no contact at all
            touching = (d.sensordata[:, self._feet_at] > 0) & (d.ncon.reshape(-1, 1) > 0)  # type: ignore[attr-defined]
            rows[:, lay.feet_at : lay.step_at] = touching
        self.steps += 1
        rows[:, lay.step_at] = self.steps
