"""A user robot's env, read from its compiled model: root, actuators, bodies, feet; and a check that it simulates.

Runs inside a sandboxed child only (it compiles the upload, ``envs.mjcf``). What it finds
is a ``RobotDescription``: plain data that the trusted side turns into an env
(``envs.robot``) without compiling anything.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import mujoco
import numpy as np

from envs.capture import body_names_of, quiet_mujoco
from envs.mjcf import compile_checked
from envs.robot_data import Actuator, RobotDescription, RobotSettings
from envs.upload import RobotRefused, check_files, shown

STABILITY_STEPS = 1_000
"""Control steps of random actions a model must survive without a NaN or a physics warning."""
STABILITY_SECONDS = 30.0
"""Wall-clock limit of the stability check (a model that cannot finish it is far slower than real time)."""
MIN_REALTIME = 1.0
"""A model must simulate at least this fast, as simulated seconds per wall-clock second (one env, one core)."""
MAX_CONTACTS = 500
_UNSTABLE = {
    mujoco.mjtWarning.mjWARN_BADQACC: "the accelerations became invalid (a NaN or an overflow) and MuJoCo reset it",
    mujoco.mjtWarning.mjWARN_BADQPOS: "a joint position became invalid",
    mujoco.mjtWarning.mjWARN_BADQVEL: "a joint velocity became invalid",
    mujoco.mjtWarning.mjWARN_CONTACTFULL: "it made more contacts than its memory holds",
    mujoco.mjtWarning.mjWARN_CNSTRFULL: "it made more constraints than its memory holds",
}
_HINGE, _SLIDE, _FREE = (
    int(mujoco.mjtJoint.mjJNT_HINGE),
    int(mujoco.mjtJoint.mjJNT_SLIDE),
    int(mujoco.mjtJoint.mjJNT_FREE),
)
_HINGE_OR_SLIDE = (_HINGE, _SLIDE)


def _subtree(m: mujoco.MjModel, root: int) -> list[int]:
    return [b for b in range(1, m.nbody) if _ancestors(m, b) & {root}]


def _ancestors(m: mujoco.MjModel, body: int) -> set[int]:
    out = {body}
    while body:
        body = int(m.body_parentid[body])
        out.add(body)
    return out


def _actuators(m: mujoco.MjModel) -> tuple[Actuator, ...]:
    out = []
    for a in range(m.nu):
        name = m.actuator(a).name or f"actuator_{a}"
        joint = int(m.actuator_trnid[a, 0])
        if (
            int(m.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT)
            or int(m.jnt_type[joint]) not in _HINGE_OR_SLIDE
        ):
            raise RobotRefused(
                f"the actuator '{shown(name)}' does not drive a hinge or slide joint directly; only joint actuators "
                "(motor, position, velocity, general on a hinge or slide) are supported"
            )
        low, high = (float(x) for x in m.actuator_ctrlrange[a])
        if not m.actuator_ctrllimited[a] or not low < high:
            raise RobotRefused(f"the actuator '{shown(name)}' has no control range; give it ctrlrange='low high'")
        out.append(Actuator(name, m.joint(joint).name or f"joint_{joint}", low, high))
    if not out:
        raise RobotRefused("the model has no actuators; a policy needs at least one to act")
    return tuple(out)


def _root(m: mujoco.MjModel) -> tuple[int, int | None]:
    """(root body, its free joint or None): the free body, or else the top-level body, with most actuated joints."""
    actuated = [int(m.jnt_bodyid[m.actuator_trnid[a, 0]]) for a in range(m.nu)]

    def score(body: int) -> int:
        return sum(body in _ancestors(m, b) for b in actuated)

    free = [j for j in range(m.njnt) if int(m.jnt_type[j]) == _FREE]
    if free:
        joint = max(free, key=lambda j: score(int(m.jnt_bodyid[j])))
        return int(m.jnt_bodyid[joint]), joint
    top = [b for b in range(1, m.nbody) if m.body_parentid[b] == 0]
    return max(top, key=score), None


def _can_touch(m: mujoco.MjModel, geom: int, floor: int) -> bool:
    return bool(
        (m.geom_contype[geom] & m.geom_conaffinity[floor]) or (m.geom_contype[floor] & m.geom_conaffinity[geom])
    )


def _feet(m: mujoco.MjModel, root: int, floor: int) -> tuple[tuple[str, str], ...]:
    """(body, geom) of each leaf body of the robot with a geom that can touch the floor (its first such geom)."""
    if floor < 0:
        return ()
    parents = set(int(p) for p in m.body_parentid[1:])
    feet = []
    for body in _subtree(m, root):
        if body in parents or body == root:
            continue
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == body and _can_touch(m, g, floor)]
        if geoms:
            feet.append((m.body(body).name, m.geom(geoms[0]).name))
    return tuple(feet)


def _meanings(
    m: mujoco.MjModel, root: int, free_joint: int | None, feet: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    names = body_names_of(m)
    driven = {int(m.actuator_trnid[a, 0]) for a in range(m.nu)}
    foot_geom = dict(feet)
    robot = set(_subtree(m, root))
    out = []
    for b in range(1, m.nbody):
        name = names[b - 1]
        joints = [j for j in range(m.njnt) if m.jnt_bodyid[j] == b]
        if b == root:
            meaning = (
                "the root: floats freely on a free joint; the torso of the common fields"
                if free_joint is not None
                else "the root: the robot's base; the torso of the common fields"
            )
        elif name in foot_geom:
            meaning = f"a foot: leaf body whose geom '{foot_geom[name]}' can touch the floor"
        elif b not in robot:
            free = any(int(m.jnt_type[j]) == _FREE for j in joints)
            moved_by = ", ".join(m.joint(j).name for j in joints)
            meaning = "a free object (free joint), not part of the robot" if free else "not part of the robot"
            meaning += f"; moved by joint {moved_by}" if joints and not free else ""
        elif joints:
            moved = ", ".join(f"{m.joint(j).name}{'' if j in driven else ' (passive)'}" for j in joints)
            meaning = f"a link moved by joint {moved}"
        else:
            meaning = f"fixed to its parent '{names[m.body_parentid[b] - 1] if m.body_parentid[b] else 'world'}'"
        out.append((name, meaning))
    return tuple(out)


def describe_model(m: mujoco.MjModel, settings: RobotSettings) -> tuple[RobotDescription, RobotSettings]:
    """What the env needs to know about the compiled model ``m``, and the settings resolved for it."""
    actuators = _actuators(m)
    root, free_joint = _root(m)
    plane = int(mujoco.mjtGeom.mjGEOM_PLANE)
    floor = next((g for g in range(m.ngeom) if m.geom_bodyid[g] == 0 and int(m.geom_type[g]) == plane), -1)
    feet = _feet(m, root, floor)
    driven = {int(m.actuator_trnid[a, 0]) for a in range(m.nu)}
    passive = tuple(
        (
            m.joint(j).name,
            f"unactuated {'hinge' if int(m.jnt_type[j]) == _HINGE else 'slide'} of '{m.body(m.jnt_bodyid[j]).name}'",
        )
        for j in range(m.njnt)
        if int(m.jnt_type[j]) in _HINGE_OR_SLIDE and j not in driven
    )
    root_qpos = (
        tuple(range(int(m.jnt_qposadr[free_joint]), int(m.jnt_qposadr[free_joint]) + 7))
        if free_joint is not None
        else ()
    )
    data = mujoco.MjData(m)
    mujoco.mj_forward(m, data)
    description = RobotDescription(
        root_body=m.body(root).name,
        free=free_joint is not None,
        root_qpos=root_qpos,
        root_height=float(data.xpos[root, 2]),
        timestep=float(m.opt.timestep),
        nq=int(m.nq),
        nv=int(m.nv),
        actuators=actuators,
        bodies=_meanings(m, root, free_joint, feet),
        feet=feet,
        passive_joints=passive,
        floor=m.geom(floor).name if floor >= 0 else "",
        observed_qpos=tuple(i for i in range(m.nq) if i not in root_qpos[:2]),
        mass=float(sum(m.body_mass[b] for b in _subtree(m, root))),
    )
    resolved = settings.resolved(description.timestep, description.root_height)
    if resolved.termination != "none" and not description.free:
        raise RobotRefused(
            f"termination '{resolved.termination}' needs a free-floating root, and this robot's root "
            f"'{shown(description.root_body)}' is fixed; use termination 'none'"
        )
    return description, resolved


def stability(m: mujoco.MjModel, settings: RobotSettings, *, min_realtime: float = MIN_REALTIME) -> dict[str, float]:
    """Random actions for ``STABILITY_STEPS`` control steps: refuses a model that blows up, overflows its
    contacts, or simulates slower than ``min_realtime``; returns what it measured."""
    data = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    noise = settings.reset_noise
    data.qpos[:] = m.qpos0 + rng.uniform(-noise, noise, m.nq)
    data.qvel[:] = rng.uniform(-noise, noise, m.nv)
    mujoco.mj_forward(m, data)
    low, high = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
    skip = int(settings.frame_skip or 1)
    contacts = 0
    started = time.perf_counter()
    for step in range(1, STABILITY_STEPS + 1):
        data.ctrl[:] = rng.uniform(low, high)
        mujoco.mj_step(m, data, nstep=skip)
        contacts = max(contacts, int(data.ncon))
        when = f"at control step {step} ({data.time:.2f} s simulated) under random actions"
        for warning, what in _UNSTABLE.items():
            if data.warning[warning].number:
                raise RobotRefused(f"the model is not stable: {what} {when}; check masses, inertias, the timestep")
        if not (np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()):
            raise RobotRefused(f"the model is not stable: its state became NaN {when}; check masses and the timestep")
        if contacts > MAX_CONTACTS:
            raise RobotRefused(f"the model made {contacts} contacts {when}; at most {MAX_CONTACTS} are accepted")
        if time.perf_counter() - started > STABILITY_SECONDS:
            raise RobotRefused(
                f"the model simulated only {data.time:.2f} s in {STABILITY_SECONDS:g} s of wall-clock time: far "
                "slower than real time; simplify its collision geometry or raise the timestep"
            )
    seconds = time.perf_counter() - started
    realtime = float(data.time / max(seconds, 1e-9))
    if realtime < min_realtime:
        raise RobotRefused(
            f"the model simulates at {realtime:.2f} x real time (one env on one core); at least {min_realtime:g} x "
            "is needed to train on it; simplify its collision geometry or raise the timestep"
        )
    return {"stability_steps": float(STABILITY_STEPS), "realtime_factor": realtime, "max_contacts": float(contacts)}


def derive(
    files: Mapping[str, bytes],
    settings: RobotSettings,
    root_file: str | None = None,
    *,
    min_realtime: float = MIN_REALTIME,
) -> tuple[RobotDescription, RobotSettings]:
    """Check, compile and measure an upload (sandbox only): its description and its resolved settings."""
    quiet_mujoco()
    files, root = check_files(files, root_file)
    model = compile_checked(files, root)
    description, resolved = describe_model(model, settings)
    checks = stability(model, resolved, min_realtime=min_realtime)
    return replace(description, checks=checks), resolved
