"""The store this installation uses, from its settings: a bucket when REWARDSMITH_ARTIFACTS_URL names one, else the
data dir's ``artifacts`` directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from app.artifacts.base import ArtifactStore
from app.artifacts.local import LocalStore
from app.artifacts.s3 import S3Store
from app.config import Settings


def store_of(settings: Settings) -> ArtifactStore:
    """The artifact store of ``settings`` (one per process and configuration: a bucket's client is made once)."""
    return _store(settings.artifacts_url, settings.artifacts_endpoint_url, settings.data_dir)


def local_root(data_dir: Path) -> Path:
    """The embedded store's directory under ``data_dir``."""
    return data_dir / "artifacts"


@lru_cache(maxsize=16)
def _store(url: str | None, endpoint: str | None, data_dir: Path) -> ArtifactStore:
    if url:
        return S3Store(url, endpoint=endpoint)
    return LocalStore(local_root(data_dir))
