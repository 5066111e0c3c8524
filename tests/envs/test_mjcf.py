"""An uploaded MJCF is hostile: each attack gets a clear refusal that leaks nothing outside the upload.

These call the checks in this process, as the sandboxed child does (tests/workers/engine/test_robot.py
sends some of them through the sandbox). Nothing here may read a file outside the upload: a refusal
that quoted /etc/passwd would show it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from envs.derive import derive
from envs.robot_data import RobotSettings
from envs.upload import RobotRefused, check_files

SECRET = Path("/etc/passwd").read_text().splitlines()[0]
"""A line of a file outside any upload; no refusal may contain it."""

ROBOT = """<mujoco model="probe">
  {head}
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="torso" pos="0 0 0.3">
      <freejoint/>
      <geom {geom}/>
      <body name="leg"><joint name="hip" type="hinge" axis="0 1 0"/><geom type="capsule" fromto="0 0 0 0 0 -0.2" size="0.02"/></body>
    </body>
    {world}
  </worldbody>
  <actuator><motor joint="hip" ctrlrange="-1 1" gear="5"/></actuator>
</mujoco>
"""


def robot(head: str = "", geom: str = 'type="sphere" size="0.1"', world: str = "") -> bytes:
    return ROBOT.format(head=head, geom=geom, world=world).encode()


def binary_stl(triangles: int) -> bytes:
    """A binary STL of ``triangles`` small triangles (a tetrahedron's faces, repeated)."""
    faces = [((0, 0, 0), (0.1, 0, 0), (0, 0.1, 0)), ((0, 0, 0), (0, 0.1, 0), (0, 0, 0.1))]
    faces += [((0, 0, 0), (0, 0, 0.1), (0.1, 0, 0)), ((0.1, 0, 0), (0, 0, 0.1), (0, 0.1, 0))]
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *a, *b, *c, 0) for a, b, c in faces * (triangles // 4))
    return b"\0" * 80 + struct.pack("<I", 4 * (triangles // 4)) + body


def refusal(files: dict[str, bytes], settings: dict | None = None) -> str:
    with pytest.raises(RobotRefused) as info:
        derive(files, RobotSettings.from_dict(settings), "robot.xml")
    message = str(info.value)
    assert SECRET not in message and "root:" not in message
    return message


MESH = '<asset><mesh name="m" file="{}"/></asset>'

HOSTILE = {
    "include of /etc/passwd": (
        {"robot.xml": robot(head='<include file="/etc/passwd"/>')},
        "refers to the file '/etc/passwd', which is not a relative path inside the upload",
    ),
    "an entity that reads /etc/passwd": (
        {"robot.xml": b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><mujoco>&x;</mujoco>'},
        "declares a DOCTYPE or ENTITY",
    ),
    "a mesh at an absolute path": (
        {"robot.xml": robot(head=MESH.format("/etc/passwd"), geom='type="mesh" mesh="m"')},
        "refers to the file '/etc/passwd', which is not a relative path",
    ),
    "a mesh up a directory": (
        {"robot.xml": robot(head=MESH.format("../../etc/passwd")), "passwd.stl": binary_stl(4)},
        "refers to the file '../../etc/passwd', which is not a relative path",
    ),
    "a mesh directory outside the upload": (
        {"robot.xml": robot(head='<compiler meshdir="/etc"/>' + MESH.format("passwd.stl")), "passwd.stl": b""},
        "sets meshdir='/etc', which is not a relative directory inside the upload",
    ),
    "an include hidden in an uploaded include": (
        {
            "robot.xml": robot(head='<include file="parts.xml"/>'),
            "parts.xml": b'<mujoco><include file="/etc/passwd"/></mujoco>',
        },
        "'parts.xml' refers to the file '/etc/passwd'",
    ),
    "a file the upload does not hold": (
        {"robot.xml": robot(head='<include file="passwd.xml"/>')},
        "refers to the file 'passwd.xml', which is not in the upload; add it",
    ),
    "an include of itself": (
        {"robot.xml": robot(head='<include file="robot.xml"/>')},
        "'robot.xml' is included more than once",
    ),
    "10,000 bodies": (
        {"robot.xml": robot(world="<body><geom size='0.01'/></body>" * 10_000)},
        "the model has more than 200 bodies",
    ),
    "10,000 bodies by replication": (
        {
            "robot.xml": robot(
                world='<replicate count="100" offset="0.01 0 0"><replicate count="100" offset="0 0.01 0"><body><geom size="0.01"/></body></replicate></replicate>'
            )
        },
        "the model has more than 200 bodies",
    ),
    "a plugin": (
        {"robot.xml": robot(head='<extension><plugin plugin="mujoco.elasticity.cable"/></extension>')},
        "uses <extension>: plugins are not accepted",
    ),
    "a mesh naming a material library": (
        {"robot.xml": robot(head=MESH.format("m.obj")), "m.obj": b"mtllib /etc/passwd\nv 0 0 0\n"},
        "names a material library (mtllib)",
    ),
    "a mesh larger than its header allows": (
        {"robot.xml": robot(head=MESH.format("m.stl")), "m.stl": binary_stl(4)[:84] + b"\0" * 5000},
        "is not a binary STL of at most 66,666 triangles",
    ),
    "an image of a billion pixels": (
        {
            "robot.xml": robot(head='<asset><texture name="t" type="2d" file="t.png"/></asset>'),
            "t.png": b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 40_000, 40_000),
        },
        "is 40,000 x 40,000 pixels",
    ),
    "an unstable model": (
        {
            "robot.xml": robot(head='<option timestep="0.05"/>', geom='type="sphere" size="0.1" mass="0.001"').replace(
                b'gear="5"', b'gear="1e7"'
            )
        },
        "the model is not stable",
    ),
    "a timestep out of range": (
        {"robot.xml": robot(head='<option timestep="0.5"/>')},
        "the model's timestep is 0.5 s; it must be between 0.0001 and 0.05 s",
    ),
    "not XML": ({"robot.xml": b"<mujoco><worldbody></mujoco>"}, "is not well-formed XML (line 1"),
    "an actuator without a control range": (
        {"robot.xml": robot().replace(b' ctrlrange="-1 1"', b"")},
        "the actuator 'actuator_0' has no control range",
    ),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_a_hostile_model_is_refused_with_the_reason_and_leaks_nothing(attack: str) -> None:
    files, reason = HOSTILE[attack]
    assert reason in refusal(files)


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"robot.xml": robot(), "big.stl": b"\0" * (50 * 2**20)}, "'big.stl' is 50.0 MiB, over the limit of 16 MiB"),
        ({"../robot.xml": robot()}, "the file name '../robot.xml' is not accepted"),
        ({"/etc/robot.xml": robot()}, "the file name '/etc/robot.xml' is not accepted"),
        ({"robot.xml": robot(), "run.sh": b"#!/bin/sh"}, "'run.sh' is of a type robots cannot bring"),
        ({"a.xml": robot(), "b.xml": robot()}, "the upload has 2 MJCF files at its top level"),
        ({}, "the upload holds no files"),
    ],
)
def test_the_upload_itself_is_checked_before_anything_reads_it(files: dict[str, bytes], reason: str) -> None:
    with pytest.raises(RobotRefused) as info:
        check_files(files)
    assert reason in str(info.value)


def test_a_model_with_its_meshes_in_a_directory_compiles_from_the_upload_alone() -> None:
    files = {
        "robot.xml": robot(
            head='<compiler meshdir="meshes"/>' + MESH.format("part.stl"),
            world='<body name="prop" pos="1 0 0.1"><geom type="mesh" mesh="m"/></body>',
        ),
        "meshes/part.stl": binary_stl(4),
    }
    description, settings = derive(files, RobotSettings(), "robot.xml")
    assert description.root_body == "torso" and settings.frame_skip == 25  # 0.05 s at MuJoCo's 0.002 s
    assert dict(description.bodies)["prop"] == "not part of the robot"


def test_a_model_far_slower_than_real_time_is_refused() -> None:
    # no model here is slow: a bar no machine clears shows the refusal
    with pytest.raises(RobotRefused, match=r"simulates at [\d.]+ x real time .* at least 1e\+09 x is needed"):
        derive({"robot.xml": robot()}, RobotSettings(), min_realtime=1e9)
