"""The files a user may download, for the REST API and the dashboard alike: a candidate's reward program, its
Gymnasium wrapper, its export bundle, and what its trainings produced. A training's files are streamed from the
artifact store (a directory or a bucket), by key under the training's own prefix and only by the names below: a
stored key that is not a key, or a symlink a program left behind in the directory store, is refused."""

from __future__ import annotations

import logging

from fastapi.responses import PlainTextResponse, Response

from app.artifacts.base import ArtifactStore, StoreUnavailable, read_bytes
from app.artifacts.keys import is_key, join
from app.artifacts.stores import store_of
from app.config import Settings
from app.db.models import Candidate, Training
from app.errors import NotFound, RewardsmithError
from app.export import POLICY_FILES, TrainedPolicy, bundle_files, bundle_zip, wrapper_module
from app.search.rules.states import TrainingStatus
from app.web.ranges import stream
from envs.fitness import get_metric

log = logging.getLogger(__name__)

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


MAX_BUNDLED_BYTES = 256 * 1024 * 1024
"""Largest policy file packed into an export bundle (the bundle is built in memory)."""


def artifact_store(settings: Settings) -> ArtifactStore:
    """Where trainings' files are (``REWARDSMITH_ARTIFACTS_URL``, else the data dir's artifacts directory)."""
    return store_of(settings)


def artifact_files(t: Training, store: ArtifactStore) -> dict[str, int]:
    """The files of ``t`` that may be served, by name, with their sizes: those its worker stored (for a training
    recorded before uploads were listed, those the store holds under its key; none while the store is away)."""
    if not t.artifacts_key or not is_key(t.artifacts_key):
        return {}
    stored = t.stored_files
    if stored is None:
        try:
            stored = store.list(t.artifacts_key)
        except StoreUnavailable as e:  # the page still renders, without links
            log.warning("the files of training %s are not listed: %s", t.id, e.message)
            return {}
    return {name: int(stored[name]) for name in ARTIFACT_NAMES if name in stored}


def artifact_response(
    c: Candidate, *, training_id: int, name: str, settings: Settings, range_header: str | None = None
) -> Response:
    """One file a training of ``c`` produced, streamed from the store, whole or the byte range asked for (NotFound
    for anything else)."""
    t = next((t for t in c.trainings if t.id == training_id), None)
    if t is None or not t.artifacts_key or name not in ARTIFACT_NAMES:
        raise NotFound(f"no artifact '{name}' for training {training_id} of candidate {c.id}")
    store = artifact_store(settings)
    found = store.stat(join(t.artifacts_key, name)) if name in artifact_files(t, store) else None
    if found is None:
        raise NotFound(f"training {training_id} did not produce '{name}' (or it is not a file in the artifact store)")
    return stream(
        store,
        join(t.artifacts_key, name),
        size=found.size,
        media_type=MEDIA.get(name[name.rfind(".") :], "application/octet-stream"),
        filename=f"candidate-{c.id}-training-{t.id}-{name}",
        range_header=range_header,
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


def trained_policy(c: Candidate, store: ArtifactStore) -> TrainedPolicy | None:
    """The policy files of ``c``'s longest successful training that left them (None when none did), as bytes read
    from the store."""
    done = [t for t in c.trainings if t.status == TrainingStatus.OK]
    for t in sorted(done, key=lambda t: (t.timesteps, t.id), reverse=True):
        found = artifact_files(t, store)
        if t.artifacts_key and all(name in found for name in POLICY_FILES):
            try:
                files = {
                    name: read_bytes(store, join(t.artifacts_key, name), limit=MAX_BUNDLED_BYTES)
                    for name in POLICY_FILES
                }
            except FileNotFoundError:
                continue
            except ValueError as e:
                raise RewardsmithError(f"the policy of training {t.id} is too large to bundle here: {e}") from e
            result = t.result or {}
            fitness = result.get("fitness") or {"per_episode": None}
            return TrainedPolicy(
                files=files,
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
        policy=trained_policy(c, artifact_store(settings)),
    )
    folder = f"rewardsmith-candidate-{c.id}"
    return Response(
        bundle_zip(files, folder=folder),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{folder}.zip"'},
    )
