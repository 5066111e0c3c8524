"""The files a user may download, for the REST API and the dashboard alike: a candidate's reward program, its
Gymnasium wrapper, its export bundle, and what its trainings produced. A training's files are served only from its
own folder under the artifacts root (``data_dir/artifacts``): the path is resolved first, so a symlink a program
left behind, or a stored path that leads elsewhere (another training's folder included), is refused."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse, PlainTextResponse, Response

from app.config import Settings
from app.db.models import Candidate, Training
from app.errors import NotFound
from app.export import POLICY_FILES, TrainedPolicy, bundle_files, bundle_zip, wrapper_module
from app.search.rules.states import TrainingStatus
from envs.fitness import get_metric

ARTIFACT_NAMES = ("video.mp4", "policy.zip", "vecnormalize.pkl", "result.json", "reward.py")
"""policy.zip: the trained PPO (``stable_baselines3.PPO.load``); vecnormalize.pkl: its observation normalisation
(``VecNormalize.load``). Served as downloads, never loaded here."""
MEDIA = {
    ".mp4": "video/mp4",
    ".zip": "application/zip",
    ".json": "application/json",
    ".py": "text/x-python",
    ".pkl": "application/octet-stream",
}


def artifacts_root(settings: Settings) -> Path:
    """Where trainings leave their files, with every symlink on the way resolved."""
    return (settings.data_dir / "artifacts").resolve()


def contained_file(path: Path, root: Path) -> Path | None:
    """``path`` with its symlinks resolved, if that is a regular file under ``root``; else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return None
    return real if real.is_relative_to(root) and real.is_file() else None


def artifact_files(t: Training, root: Path) -> dict[str, Path]:
    """The files of ``t`` that may be served, by name: each must resolve to a regular file inside the training's own
    folder (the one it recorded), and that folder must lie inside ``root`` (and not be the root itself). A link to
    another training's file (another user's included) serves nothing, nor does anything outside the root."""
    if not t.artifacts_dir:
        return {}
    try:
        own = Path(t.artifacts_dir).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        return {}
    if own == root or not own.is_relative_to(root) or not own.is_dir():
        return {}
    found = {name: contained_file(own / name, own) for name in ARTIFACT_NAMES}
    return {name: path for name, path in found.items() if path is not None}


def artifact_response(c: Candidate, *, training_id: int, name: str, settings: Settings) -> FileResponse:
    """One file a training of ``c`` produced (NotFound for anything else, or anything outside the root)."""
    t = next((t for t in c.trainings if t.id == training_id), None)
    if t is None or not t.artifacts_dir or name not in ARTIFACT_NAMES:
        raise NotFound(f"no artifact '{name}' for training {training_id} of candidate {c.id}")
    path = artifact_files(t, artifacts_root(settings)).get(name)
    if path is None:
        raise NotFound(
            f"training {training_id} did not produce '{name}' (or it is not a file under the artifacts root)"
        )
    return FileResponse(
        path,
        media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        filename=f"candidate-{c.id}-training-{t.id}-{name}",
    )


def reward_response(c: Candidate) -> PlainTextResponse:
    """The reward program as a .py download."""
    if not c.code:
        raise NotFound(f"candidate {c.id} has no program (the designer's answer held none)")
    return PlainTextResponse(
        c.code, media_type="text/x-python", headers={"Content-Disposition": f'attachment; filename="reward_{c.id}.py"'}
    )


def wrapper_response(c: Candidate) -> PlainTextResponse:
    """The reward as a ready Gymnasium wrapper module."""
    if not c.code:
        raise NotFound(f"candidate {c.id} has no program")
    return PlainTextResponse(
        wrapper_module(c.code, env=c.run.task.env, candidate_id=c.id),
        media_type="text/x-python",
        headers={"Content-Disposition": f'attachment; filename="reward_wrapper_{c.id}.py"'},
    )


def trained_policy(c: Candidate, root: Path) -> TrainedPolicy | None:
    """The policy files of ``c``'s longest successful training that left them (None when none did)."""
    done = [t for t in c.trainings if t.status == TrainingStatus.OK]
    for t in sorted(done, key=lambda t: (t.timesteps, t.id), reverse=True):
        found = artifact_files(t, root)
        if all(name in found for name in POLICY_FILES):
            result = t.result or {}
            fitness = result.get("fitness") or {"per_episode": None}
            return TrainedPolicy(
                files={name: found[name] for name in POLICY_FILES},
                eval_seeds=list((result.get("seeds") or {}).get("eval") or []),
                episode_steps=result.get("episode_steps"),
                measured=fitness.get("per_episode"),
            )
    return None


def bundle_response(c: Candidate, settings: Settings) -> Response:
    """The candidate's export bundle as a zip: its reward as a Gymnasium wrapper, its trained policy and enjoy.py."""
    if not c.code:
        raise NotFound(f"candidate {c.id} has no program")
    task = c.run.task
    files = bundle_files(
        c.code,
        env=task.env,
        candidate_id=c.id,
        fitness_name=task.fitness_name,
        fitness_source=task.fitness_source or get_metric(task.fitness_name).source,
        policy=trained_policy(c, artifacts_root(settings)),
    )
    folder = f"rewardsmith-candidate-{c.id}"
    return Response(
        bundle_zip(files, folder=folder),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{folder}.zip"'},
    )
