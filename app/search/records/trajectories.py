"""The run's recorded evaluation episodes (each training's ``trajectories.npz``), fetched for the trajectory screen.

The trusted worker downloads them from the artifact store into a scratch folder; only the sandbox reads them
(``workers.engine.screen``). The most recent trainings first, at most ``MAX_FILES``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.artifacts.base import ArtifactStore, StoreUnavailable
from app.artifacts.transfer import fetch
from app.db.models import Training
from app.search.rules.states import Purpose, TrainingStatus
from workers.engine.screen import MAX_FILES
from workers.engine.trajectories import TRAJECTORIES_FILE

log = logging.getLogger(__name__)


def recorded_keys(s: Session, run_id: int) -> list[str]:
    """Artifact keys of the run's successful trainings that stored their evaluation episodes, newest first."""
    rows = s.execute(
        select(Training.artifacts_key, Training.stored_files)
        .where(
            Training.run_id == run_id,
            Training.status == TrainingStatus.OK,
            Training.purpose.in_((Purpose.SCREEN, Purpose.FULL, Purpose.BASELINE)),
            Training.artifacts_key.is_not(None),
        )
        .order_by(Training.id.desc())
    ).all()
    return [key for key, files in rows if key and TRAJECTORIES_FILE in (files or {})][:MAX_FILES]


def fetch_recorded(store: ArtifactStore, keys: list[str], into: Path) -> list[Path]:
    """Download the trajectory files under ``keys`` into ``into`` (made afresh); an unreachable store gives none (the
    candidates then train unscreened, as in the first iteration)."""
    shutil.rmtree(into, ignore_errors=True)
    paths: list[Path] = []
    for i, key in enumerate(keys):
        try:
            folder = fetch(store, key, into / str(i), names=(TRAJECTORIES_FILE,))
        except StoreUnavailable as e:
            log.warning("the trajectory screen runs without recorded episodes: %s", e.message)
            return []
        if (folder / TRAJECTORIES_FILE).is_file():
            paths.append(folder / TRAJECTORIES_FILE)
    return paths
