"""The MuJoCo model of an env as the engine runs it: Gymnasium's MJCF (or a user's) plus read-only sensors.

Sensors change nothing in the physics; they make the simulator compute, for every env of a
batch, what the state view needs and MjData would otherwise hold only as a variable-length
list or after an extra call: whether each foot touches the floor (a ``contact`` sensor per
foot, found against the floor geom), and the external contact forces (a ``framelinacc``
sensor on the root body, which makes each step run ``mj_rnePostConstraint`` as Gymnasium
does after ``mj_step``). Driven by the MJCF and the env's spec only, so a user robot needs only its spec.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import mujoco
import numpy as np

from envs.capture import quiet_mujoco
from envs.mjcf import load_mjspec
from envs.spec import EnvSpec

ASSETS = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"
"""Gymnasium's MJCF files, which its MuJoCo envs load."""


@dataclass(frozen=True)
class CompiledModel:
    """The compiled model and where the sensors it was given sit in ``sensordata``."""

    model: mujoco.MjModel
    feet_sensors: np.ndarray
    """Index into sensordata of each foot's contact count, in the order of ``spec.feet``."""


def model_spec(spec: EnvSpec) -> mujoco.MjSpec:
    """The env's MJCF as an MjSpec: Gymnasium's asset, or a user robot's checked upload (``envs.mjcf``)."""
    quiet_mujoco()  # compiler warnings go to logging, not to MUJOCO_LOG.TXT in the working directory
    if spec.robot is not None:
        return load_mjspec(spec.robot.files, spec.robot.root_file)
    path = ASSETS / spec.dynamics.xml_file
    if not path.exists():
        raise FileNotFoundError(
            f"no MJCF '{spec.dynamics.xml_file}' among Gymnasium's assets in {ASSETS}; is gymnasium installed?"
        )
    return mujoco.MjSpec.from_file(str(path))


def compile_model(spec: EnvSpec, *, contact_forces: bool) -> CompiledModel:
    """The env's model compiled with a contact sensor per foot of ``spec`` (and, given ``contact_forces``, a
    sensor that makes every step compute ``cfrc_ext``)."""
    mj = model_spec(spec)
    floor = _floor_geom(mj, spec.floor) if spec.feet else ""
    for label, geom in spec.feet:
        sensor = mj.add_sensor(
            name=f"rewardsmith_contact_{label}",
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_GEOM,
            objname=geom,
            reftype=mujoco.mjtObj.mjOBJ_GEOM,
            refname=floor,
        )
        sensor.intprm[0] = (1 << int(mujoco.mjtConDataField.mjCONDATA_FOUND)) | (
            1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE)
        )
        sensor.intprm[2] = 1  # num: one slot, holding how many contacts were found
    if contact_forces:
        mj.add_sensor(
            name="rewardsmith_rnepost",
            type=mujoco.mjtSensor.mjSENS_FRAMELINACC,
            objtype=mujoco.mjtObj.mjOBJ_XBODY,
            objname=spec.torso,
        )
    with warnings.catch_warnings():  # Gymnasium's MJCFs use attributes MuJoCo now deprecates (settotalmass)
        warnings.simplefilter("ignore")
        model = mj.compile()
    feet = np.array([model.sensor(f"rewardsmith_contact_{label}").adr[0] for label, _ in spec.feet], dtype=int)
    return CompiledModel(model, feet)


def _floor_geom(mj: mujoco.MjSpec, floor: str) -> str:
    names = [g.name for g in mj.geoms]
    if floor not in names:
        raise ValueError(f"the MJCF has no geom named '{floor}' (geoms: {names[:20]}); name the ground plane")
    return floor
