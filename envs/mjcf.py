"""A user's MJCF, hostile until proven otherwise: what it says is checked, then it is compiled from its own files.

Called inside a sandboxed child only (``workers.sandbox``: time, memory and file limits, a
private empty working directory). Before MuJoCo sees anything, every XML file the model can
reach is parsed here without a DTD, and every file it names (include, mesh, texture, height
field, ...) must be a clean relative path to a file of the upload: MuJoCo reads a name it does
not find among the given files from the disk, so no absolute path, no '..' and no name outside
the upload reaches it. Elements that load code (plugins) are refused. After compiling, the
model's sizes are capped. A refusal says what and where, and never echoes a file outside the
upload (none is ever opened).
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping

import mujoco

from envs.upload import RobotRefused, check_files, clean_path, shown

MAX_ELEMENTS = 20_000
"""XML elements in one file."""
MAX_BODIES = 200
MAX_GEOMS = 1_000
MAX_JOINTS = 200
MAX_ACTUATORS = 64
MAX_MESH_VERTICES = 200_000
MAX_TEXTURE_PIXELS = 2048 * 2048
MAX_TEXTURE_BYTES = 64 * 1024 * 1024
MAX_ARENA_BYTES = 512 * 1024 * 1024
"""The model's own memory for contacts and constraints (<size memory=...>)."""
TIMESTEP_RANGE = (1e-4, 0.05)
REFUSED_ELEMENTS = {"plugin": "plugins", "extension": "plugins", "instance": "plugin instances"}
ASSET_DIRS = {"meshdir", "texturedir", "assetdir"}
"""<compiler> attributes that prefix the files the model names."""
XML_INCLUDES = {"include", "model"}
"""Elements whose file MuJoCo reads as MJCF (and which are then checked as such)."""
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _refs(element: ET.Element) -> list[tuple[str, str]]:
    """(attribute, value) of every attribute of ``element`` that names a file."""
    return [(k, v) for k, v in element.attrib.items() if k.lower().startswith("file")]


def _parse(files: Mapping[str, bytes], name: str) -> ET.Element:
    raw = files[name]
    if _DECLARATION.search(raw):
        raise RobotRefused(f"'{shown(name)}' declares a DOCTYPE or ENTITY; MJCF needs neither, remove it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RobotRefused(f"'{shown(name)}' is not UTF-8 text; save the MJCF as UTF-8") from None
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        line, column = e.position
        raise RobotRefused(f"'{shown(name)}' is not well-formed XML (line {line}, column {column + 1})") from None


def _resolve(files: Mapping[str, bytes], where: str, value: str, dirs: list[str]) -> str:
    """The upload's file that reference ``value`` (in file ``where``) names; refuses anything else."""
    if not clean_path(value):
        raise RobotRefused(
            f"'{shown(where)}' refers to the file '{shown(value)}', which is not a relative path inside the upload "
            "(absolute paths, '..' and odd characters are refused); put the file in the upload and name it relative "
            "to the main MJCF"
        )
    for base in [*dirs, ""]:
        candidate = posixpath.join(base, value) if base else value
        if candidate in files:
            return candidate
    raise RobotRefused(f"'{shown(where)}' refers to the file '{shown(value)}', which is not in the upload; add it")


def _count(value: str) -> int:
    """A <replicate count=...>: how many copies it makes of what it holds (refused when not a small number)."""
    try:
        count = int(value)
    except ValueError:
        raise RobotRefused(f"a <replicate> has count '{shown(value)}', which is not a whole number") from None
    if not 0 <= count <= MAX_BODIES:
        raise RobotRefused(f"a <replicate> makes {count:,} copies; at most {MAX_BODIES} are accepted")
    return count


def _walk(root: ET.Element) -> Iterator[tuple[ET.Element, int]]:
    """Every element with how many copies of it the model holds (<replicate> multiplies what it contains)."""
    stack, seen = [(root, 1)], 0
    while stack:
        element, copies = stack.pop()
        seen += 1
        if seen > MAX_ELEMENTS:
            raise RobotRefused(f"the model has more than {MAX_ELEMENTS:,} XML elements; simplify it")
        yield element, copies
        inner = copies * _count(element.get("count", "1")) if element.tag == "replicate" else copies
        stack.extend((child, inner) for child in reversed(list(element)))


def check_xml(files: Mapping[str, bytes], root_file: str) -> None:
    """Walk every MJCF the model can reach (and every .xml uploaded); refuse what must not reach MuJoCo."""
    dirs: list[str] = []
    pending = [root_file, *sorted(n for n in files if n.lower().endswith(".xml") and n != root_file)]
    seen: set[str] = set()
    included: set[str] = set()
    bodies = 0
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for element, copies in _walk(_parse(files, name)):
            tag = element.tag if isinstance(element.tag, str) else ""
            bodies += copies if tag == "body" else 0
            if bodies > MAX_BODIES:
                raise RobotRefused(f"the model has more than {MAX_BODIES} bodies; at most {MAX_BODIES} are accepted")
            if tag in REFUSED_ELEMENTS:
                raise RobotRefused(f"'{shown(name)}' uses <{tag}>: {REFUSED_ELEMENTS[tag]} are not accepted")
            for key, value in element.attrib.items():
                if key.lower() in ASSET_DIRS:
                    if value and not clean_path(value.rstrip("/")):
                        raise RobotRefused(
                            f"'{shown(name)}' sets {shown(key)}='{shown(value)}', which is not a relative "
                            "directory inside the upload"
                        )
                    dirs.append(value.rstrip("/"))
            for _, value in _refs(element):
                target = _resolve(files, name, value, dirs)
                if tag in XML_INCLUDES or target.lower().endswith(".xml"):
                    if target in included or target == root_file:
                        raise RobotRefused(f"'{shown(target)}' is included more than once; include each file once")
                    included.add(target)
                    pending.append(target)
                else:
                    _check_asset(files[target], target)


def _check_asset(raw: bytes, name: str) -> None:
    """Refuse a mesh or image whose header says it is larger than the caps (before MuJoCo decodes it)."""
    kind = name.lower().rsplit(".", 1)[-1]
    if kind == "png":
        _check_png(raw, name)
    elif kind == "obj":
        if re.search(rb"^\s*mtllib\b", raw, re.M):
            raise RobotRefused(f"the mesh '{shown(name)}' names a material library (mtllib); remove it")
        vertices = len(re.findall(rb"^\s*v\s", raw, re.M))
        if vertices > MAX_MESH_VERTICES:
            raise RobotRefused(f"the mesh '{shown(name)}' has {vertices:,} vertices; at most {MAX_MESH_VERTICES:,}")
    elif kind == "stl" and not raw.lstrip().lower().startswith(b"solid") and len(raw) >= 84:
        triangles = int.from_bytes(raw[80:84], "little")
        if 3 * triangles > MAX_MESH_VERTICES or 84 + 50 * triangles != len(raw):
            raise RobotRefused(
                f"the mesh '{shown(name)}' is not a binary STL of at most {MAX_MESH_VERTICES // 3:,} triangles"
            )


def _check_png(raw: bytes, name: str) -> None:
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or len(raw) < 24:
        raise RobotRefused(f"'{shown(name)}' is not a PNG image")
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if width * height > MAX_TEXTURE_PIXELS:
        raise RobotRefused(
            f"the image '{shown(name)}' is {width:,} x {height:,} pixels; at most {MAX_TEXTURE_PIXELS:,} are accepted"
        )


def load_mjspec(files: Mapping[str, bytes], root_file: str) -> mujoco.MjSpec:
    """The checked upload as an MjSpec built from its own files only; the ground plane is named (floor)."""
    files, root_file = check_files(files, root_file)
    check_xml(files, root_file)
    try:
        mj = mujoco.MjSpec.from_string(files[root_file].decode("utf-8"), assets=dict(files))
    except ValueError as e:
        raise RobotRefused(f"MuJoCo cannot read the model: {_mujoco_error(e)}") from None
    _name_everything(mj)
    return mj


def _name_everything(mj: mujoco.MjSpec) -> None:
    """Names for what the state view and the engine's sensors refer to by name: the first ground plane is
    'floor' (unless named), an unnamed body is body_<id>, an unnamed geom geom_<id>, joint joint_<id>."""
    taken = {g.name for g in mj.geoms}
    for geom in mj.worldbody.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
            if not geom.name:
                geom.name = "floor" if "floor" not in taken else "rewardsmith_floor"
            break
    for i, body in enumerate(mj.bodies):
        if i and not body.name:
            body.name = f"body_{i}"
    for i, geom in enumerate(mj.geoms):
        if not geom.name:
            geom.name = f"geom_{i}"
    for i, joint in enumerate(mj.joints):
        if not joint.name:
            joint.name = f"joint_{i}"


def compile_checked(files: Mapping[str, bytes], root_file: str) -> mujoco.MjModel:
    """The upload compiled, with its sizes within the caps; refuses what MuJoCo refuses, with its reason."""
    mj = load_mjspec(files, root_file)
    try:
        model = mj.compile()
    except ValueError as e:
        raise RobotRefused(f"MuJoCo cannot compile the model: {_mujoco_error(e)}") from None
    caps = [
        ("bodies", model.nbody - 1, MAX_BODIES),
        ("geoms", model.ngeom, MAX_GEOMS),
        ("joints", model.njnt, MAX_JOINTS),
        ("actuators", model.nu, MAX_ACTUATORS),
        ("mesh vertices", model.nmeshvert, MAX_MESH_VERTICES),
        ("bytes of textures", model.ntexdata, MAX_TEXTURE_BYTES),
        ("bytes of simulation memory", model.narena, MAX_ARENA_BYTES),
    ]
    for what, count, cap in caps:
        if count > cap:
            raise RobotRefused(f"the model has {count:,} {what}; at most {cap:,} are accepted")
    low, high = TIMESTEP_RANGE
    if not low <= model.opt.timestep <= high:
        raise RobotRefused(
            f"the model's timestep is {model.opt.timestep:g} s; it must be between {low:g} and {high:g} s "
            "(<option timestep=...>)"
        )
    return model


def _mujoco_error(e: Exception) -> str:
    """MuJoCo's message, printable and short (it quotes only the upload: nothing else is read)."""
    text = " ".join(str(e).split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 400 else text[:397] + "..."
