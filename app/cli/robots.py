"""`rewardsmith envs add`, `envs remove`, and what `envs show`, `check` and `evaluate` need of a user robot.

The command line works on the settings' database as its operator: it sees every robot, and a robot
it adds belongs to no user (only admins see it) unless ``--owner`` names one; ``--shared`` shares
it with everyone. The compile runs through the same sandbox gateway as the API's.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

import app.search.records.robots as robots
import envs as registry
from app.cli.common import console, fail, shown
from app.config import Settings, get_settings
from app.db import session_scope
from app.db.models import User
from app.errors import RewardsmithError
from app.search.service import add_robot, local_database, remove_robot, robot_or_404
from envs.upload import FILE_TYPES, MAX_FILES, MAX_TOTAL_BYTES


def database(settings: Settings, *, create: bool) -> sessionmaker | None:
    """The settings' database, migrated; None when ``create`` is False and its SQLite file does not exist yet (no
    robot can be stored in a database that was never made)."""
    url = settings.resolved_database_url
    if not create and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return local_database(settings)


def require_env(env: str) -> registry.EnvSpec:
    """The env ``env``: a built-in one, or a user robot stored in the database (registered in this process)."""
    if env in registry.REGISTRY:
        return registry.get_spec(env)
    sf = database(get_settings(), create=False)
    if sf is None:
        return registry.get_spec(env)  # (no database: the error lists the built-in envs)
    with session_scope(sf) as s:
        return robots.usable_env(s, name=env, viewer=robots.COMMAND_LINE)


def user_envs() -> list[tuple[str, str, str]]:
    """(name, title, owner) of every stored robot, for `rewardsmith envs`."""
    sf = database(get_settings(), create=False)
    if sf is None:
        return []
    with session_scope(sf) as s:
        owners = {u.id: u.name for u in s.scalars(select(User))}
        return [
            (r.name, robots.described_spec(r).title, owners.get(r.owner_id or 0, "command line"))
            for r in robots.visible_robots(s, robots.COMMAND_LINE)
        ]


def read_model(model: Path, assets: Path | None) -> tuple[dict[str, bytes], str]:
    """The MJCF and the asset files under ``assets`` (by their paths relative to it; files of other types and the
    MJCF itself are left out), read within the upload's bounds."""
    try:
        files = {model.name: model.read_bytes()}
    except OSError as e:
        fail(f"cannot read the model '{model}': {e.strerror}.")
    if assets is None:
        return files, model.name
    if not assets.is_dir():
        fail(f"--assets '{assets}' is not a directory.")
    total = len(files[model.name])
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        if path.suffix.lower() not in FILE_TYPES or path.resolve() == model.resolve():
            continue
        total += path.stat().st_size
        if len(files) >= MAX_FILES or total > MAX_TOTAL_BYTES:
            fail(f"--assets '{assets}' holds more than {MAX_FILES} files or {MAX_TOTAL_BYTES // 2**20} MiB of them.")
        files[path.relative_to(assets).as_posix()] = path.read_bytes()
    return files, model.name


def envs_add(
    name: str = typer.Argument(..., help="The env name the robot gets (letters, digits, '_', '-')."),
    model: Path = typer.Argument(..., help="The robot's MJCF file."),
    assets: Path | None = typer.Option(
        None, "--assets", help="Directory of its meshes and textures, named as the MJCF names them."
    ),
    frame_skip: int | None = typer.Option(None, "--frame-skip", help="Physics steps per control step (≈0.05 s)."),
    episode_steps: int | None = typer.Option(None, "--episode-steps", help="Control steps per episode (1000)."),
    reset_noise: float | None = typer.Option(None, "--reset-noise", help="Uniform noise on the initial state (0.1)."),
    termination: str | None = typer.Option(None, "--termination", help="none, height or upright (none)."),
    min_height: float | None = typer.Option(None, "--min-height", help="With height: lowest root height, m."),
    max_height: float | None = typer.Option(None, "--max-height", help="With height: highest root height, m."),
    min_upright: float | None = typer.Option(None, "--min-upright", help="With upright: lowest upright (0)."),
    owner: str | None = typer.Option(None, "--owner", help="The user it belongs to (default: none; admins see it)."),
    shared: bool = typer.Option(False, "--shared", help="Share it with every user."),
) -> None:
    """Add a robot from its MJCF: compiled from its own files in the sandbox, checked to simulate stably, stored
    in the database; then use it by name like a built-in env."""
    files, root_file = read_model(model, assets)
    chosen = {
        k: v
        for k, v in {
            "frame_skip": frame_skip,
            "episode_steps": episode_steps,
            "reset_noise": reset_noise,
            "termination": termination,
            "min_height": min_height,
            "max_height": max_height,
            "min_upright": min_upright,
        }.items()
        if v is not None
    }
    settings = get_settings()
    sf = database(settings, create=True)
    assert sf is not None
    console.print(f"checking '{shown(name)}' in the sandbox (compile, 1,000 random steps, a picture)…")
    try:
        with session_scope(sf) as s:
            owner_id = None
            if owner is not None:
                owner_id = s.scalar(select(User.id).where(User.name == owner))
                if owner_id is None:
                    fail(f"no user named '{owner}'; create one with `rewardsmith users create {owner}`")
            robot = add_robot(
                s,
                name=name,
                files=files,
                root_file=root_file,
                robot_settings=chosen,
                owner_id=owner_id,
                settings=settings,
            )
            robot.shared = shared
    except RewardsmithError as e:
        fail(f"{e.field}: {e.message}" if e.field else e.message)
    console.print(f"[green]added {shown(name)}[/]: see it with `rewardsmith envs show {shown(name)}`", highlight=False)


def envs_remove(name: str = typer.Argument(..., help="The robot's env name.")) -> None:
    """Remove a robot and its files (refused while an unfinished run uses it)."""
    sf = database(get_settings(), create=False)
    if sf is None:
        fail(f"no robot named '{name}': there is no database yet")
    try:
        with session_scope(sf) as s:
            remove_robot(s, name=name, viewer=robots.COMMAND_LINE)
    except RewardsmithError as e:
        fail(e.message)
    console.print(f"removed {shown(name)}", highlight=False)


def show_robot(name: str) -> None:
    """What `envs show` adds for a user robot: owner, files, every setting with its default resolved, the checks."""
    sf = database(get_settings(), create=False)
    assert sf is not None  # (the robot was found in it)
    with session_scope(sf) as s:
        robot = robot_or_404(s, name=name, viewer=robots.COMMAND_LINE)
        user = s.get(User, robot.owner_id) if robot.owner_id else None
        owner = user.name if user else "none (the command line's)"
        table = Table("setting", "value", title=f"{shown(name)}: owner {shown(owner)}, shared {robot.shared}")
        for key, value in robot.settings.items():
            table.add_row(key, "none" if value is None else shown(value))
        for key, value in robot.description.get("checks", {}).items():
            table.add_row(f"(measured) {shown(key)}", f"{value:.4g}")
        table.add_row("files", shown(", ".join(f"{f.path} ({f.size:,} bytes)" for f in robot.files)))
        table.add_row("main MJCF", shown(robot.root_file))
    console.print(table)


def register(envs_app: typer.Typer) -> None:
    envs_app.command("add")(envs_add)
    envs_app.command("remove")(envs_remove)
