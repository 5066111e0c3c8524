"""Reading a saved training back (to continue it) without running anything its files could carry.

SB3's ``PPO.load`` unpickles the zip's "data" entries and ``VecNormalize.load`` unpickles a whole
object: either can run code a reward program left in the files of its training. So a continued
training reads them here, inside the sandbox, and unpickles nothing it does not know:

- ``policy.zip``: only SB3's own members, bounded in size; the "data" entry is read as JSON, never
  unpickled (only the step count is taken from it); the network and optimiser weights go through
  ``torch.load(weights_only=True)`` (SB3's ``set_parameters``) into a PPO built from the env's settings;
- ``vecnormalize.pkl``: a pickle unpickler that finds only the classes a VecNormalize is made of.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workers.engine.result import SavedFileError

if TYPE_CHECKING:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

MAX_SAVED_BYTES = 256 * 1024 * 1024
"""The most a saved file (or the members of a zip, unpacked) may hold."""
POLICY_MEMBERS = frozenset(
    {
        "data",
        "policy.pth",
        "policy.optimizer.pth",
        "pytorch_variables.pth",
        "_stable_baselines3_version",
        "system_info.txt",
    }
)
"""What SB3 writes into a PPO's zip; anything else is refused."""
NORMALIZATION_CLASSES = frozenset(
    {
        ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
        ("stable_baselines3.common.running_mean_std", "RunningMeanStd"),
        ("gymnasium.spaces.box", "Box"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._generator", "Generator"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    }
)
"""The classes a pickled VecNormalize of a Box-observation env is made of (its spaces may hold a generator)."""


def _refuse(path: Path, why: str) -> SavedFileError:
    return SavedFileError(
        f"{path.name} of the training to continue {why}; it was not loaded. Train from scratch "
        "(without resuming) to make new files."
    )


def _policy_zip(path: Path) -> zipfile.ZipFile:
    if path.stat().st_size > MAX_SAVED_BYTES:
        raise _refuse(path, f"is over {MAX_SAVED_BYTES // 2**20} MiB")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _refuse(path, "is not a zip file (SB3 saves a PPO as one)") from None
    infos = archive.infolist()
    unknown = sorted({i.filename for i in infos} - POLICY_MEMBERS)
    if unknown:
        archive.close()
        raise _refuse(path, f"holds files SB3 does not write ({', '.join(repr(n[:40]) for n in unknown[:3])})")
    if sum(i.file_size for i in infos) > MAX_SAVED_BYTES:
        archive.close()
        raise _refuse(path, f"unpacks to over {MAX_SAVED_BYTES // 2**20} MiB")
    return archive


def saved_timesteps(path: Path) -> int:
    """The training steps the PPO saved in ``path`` (policy.zip) was trained for, read as JSON."""
    with _policy_zip(path) as archive:
        if "data" not in archive.namelist():
            raise _refuse(path, "has no 'data' entry")
        try:
            data = json.loads(archive.read("data"))
        except (ValueError, RecursionError):
            raise _refuse(path, "has a 'data' entry that is not JSON") from None
    steps = data.get("num_timesteps") if isinstance(data, dict) else None
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise _refuse(path, "does not say how many steps it was trained for")
    return steps


def load_parameters(model: PPO, path: Path) -> None:
    """Load the network and optimiser weights saved in ``path`` into ``model`` (same shapes), unpickling nothing."""
    _policy_zip(path).close()
    try:
        model.set_parameters(str(path), exact_match=True, device="cpu")
    except Exception as e:  # torch's weights-only unpickler refuses anything but tensors; shapes must match
        raise _refuse(path, f"does not hold this training's networks ({type(e).__name__}: {str(e)[:300]})") from None


class _NormalizationUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in NORMALIZATION_CLASSES:
            raise pickle.UnpicklingError(
                f"it refers to {module[:80]}.{name[:80]}, which a VecNormalize holds no part of"
            )
        return super().find_class(module, name)


def load_normalization(path: Path, venv: VecEnv) -> VecNormalize:
    """The VecNormalize saved in ``path``, on ``venv``, continuing to update its statistics."""
    from stable_baselines3.common.vec_env import VecNormalize

    if not path.exists():
        raise _refuse(path, "is missing")
    if path.stat().st_size > MAX_SAVED_BYTES:
        raise _refuse(path, f"is over {MAX_SAVED_BYTES // 2**20} MiB")
    try:
        loaded = _NormalizationUnpickler(io.BytesIO(path.read_bytes())).load()
    except Exception as e:
        raise _refuse(path, f"is not a saved VecNormalize ({type(e).__name__}: {str(e)[:300]})") from None
    if not isinstance(loaded, VecNormalize):
        raise _refuse(path, f"holds a {type(loaded).__name__}, not a VecNormalize")
    obs_dim = venv.observation_space.shape
    rms = getattr(loaded, "obs_rms", None)
    if getattr(rms, "mean", np.zeros(0)).shape != obs_dim or not np.all(np.isfinite(rms.var)):  # type: ignore[union-attr]
        raise _refuse(path, f"does not hold observation statistics of shape {obs_dim}")
    try:
        loaded.set_venv(venv)
    except Exception as e:
        raise _refuse(path, f"does not fit this env ({type(e).__name__}: {str(e)[:300]})") from None
    loaded.training = True
    return loaded
