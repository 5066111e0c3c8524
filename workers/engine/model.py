"""Stable-Baselines3's PPO on the batched engine: built from an env's PPO settings, trained to an exact budget,
continued from a saved training, and saved as files a user loads with SB3 itself.

A training leaves ``policy.zip`` (``PPO.load``) and ``vecnormalize.pkl`` (``VecNormalize.load``); SB3's
logger writes TensorBoard event files under ``tb/`` when tensorboard is installed. Resuming reads
the saved files without unpickling anything a program could have written (``workers.engine.saved``).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

import workers.engine.start as start
from envs.spec import ACTIVATIONS, PPODefaults, rate_start
from workers.engine.saved import load_normalization, load_parameters, saved_timesteps
from workers.engine.wrapper import ContractReward
from workers.sandbox.runner import RESUME_DIR

POLICY_FILE = "policy.zip"
"""The trained PPO (``stable_baselines3.PPO.load``)."""
NORMALIZATION_FILE = "vecnormalize.pkl"
"""The observation and reward normalisation it was trained with (``VecNormalize.load``)."""
TENSORBOARD_DIR = "tb"
"""SB3's TensorBoard event files (``tensorboard --logdir``)."""


ACTIVATION_FNS: dict[str, type[nn.Module]] = {name: getattr(nn, cls) for name, cls in ACTIVATIONS.items()}
"""The fixed table of activation functions a policy may use (``envs.spec.ACTIVATIONS``)."""


def schedule(value: float | str) -> float | Schedule:
    """A learning rate or clip range as SB3 takes it: a number, or for ``lin_<number>`` SB3's own ``LinearSchedule``
    from that number to 0 (RL Zoo's ``linear_schedule``; SB3's class, so that ``PPO.load`` of the saved policy needs
    nothing from rewardsmith)."""
    start, linear = rate_start(value)
    return LinearSchedule(start, 0.0, 1.0) if linear else start


def policy_kwargs(ppo: PPODefaults) -> dict:
    """The MLP policy's settings: network sizes (shared, or ``{"pi": ..., "vf": ...}``), activation, initialisation."""
    arch = ppo.net_arch
    net_arch: list[int] | dict[str, list[int]] = (
        {k: list(v) for k, v in arch.items()} if isinstance(arch, dict) else list(arch)
    )
    try:
        activation = ACTIVATION_FNS[ppo.activation_fn]
    except KeyError:
        raise ValueError(f"unknown activation_fn {ppo.activation_fn!r}; known: {', '.join(ACTIVATION_FNS)}") from None
    return {
        "net_arch": net_arch,
        "log_std_init": ppo.log_std_init,
        "activation_fn": activation,
        "ortho_init": ppo.ortho_init,
    }


def new_ppo(venv: VecEnv, ppo: PPODefaults, seed: int) -> PPO:
    """A fresh CPU PPO with an MLP policy on ``venv`` (a VecNormalize), configured by ``ppo``."""
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        learning_rate=schedule(ppo.learning_rate),
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=schedule(ppo.clip_range),
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        target_kl=ppo.target_kl,
        policy_kwargs=policy_kwargs(ppo),
        seed=seed,
        device="cpu",
        verbose=0,
    )


def learner_logger(logdir: Path | None) -> Logger:
    """SB3's logger: TensorBoard event files in ``logdir`` when tensorboard is installed, else values only (they
    still reach the checkpoints)."""
    if logdir is not None and importlib.util.find_spec("tensorboard") is not None:
        return configure(str(logdir), ["tensorboard"])
    return configure(None, [])


@dataclass
class Model:
    """The PPO model, its normalising env, and where its step count started (non-zero when continued)."""

    ppo: PPO
    venv: VecNormalize
    start_timesteps: int
    resumed: bool
    ancestor_timesteps: int = 0
    """Steps the parent's saved policy had trained when this one started from it (0: from scratch)."""

    @property
    def warm(self) -> bool:
        """Whether this training started from a parent's policy (``workers.engine.start``)."""
        return self.ancestor_timesteps > 0

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for raw (N, obs) observations (normalised as in training, statistics frozen).

        Every evaluation episode calls this once a step, one batch at a time. For a Gaussian policy it computes the
        distribution's mean, as ``PPO.predict(deterministic=True)`` does, but without building the distribution and
        checking its arguments: a third of the cost (``tests/workers/engine/test_model.py`` checks the actions are
        the same); the rollout clips them to the action bounds as ``predict`` would."""
        normalized = self.venv.normalize_obs(np.asarray(obs))
        policy = self.ppo.policy
        if not isinstance(policy.action_dist, DiagGaussianDistribution):
            actions, _ = self.ppo.predict(normalized, deterministic=True)
            return np.asarray(actions)
        with torch.no_grad():
            features = policy.extract_features(torch.as_tensor(normalized).float(), policy.pi_features_extractor)
            assert isinstance(features, torch.Tensor)  # one extractor given: one tensor
            return policy.action_net(policy.mlp_extractor.forward_actor(features)).numpy()


def build_model(
    contract: ContractReward,
    ppo: PPODefaults,
    seed: int,
    *,
    resume: Path | None = None,
    warm: Path | None = None,
    logdir: Path | None = None,
) -> Model:
    """A fresh PPO on ``contract``; or the one saved in the directory ``resume`` continued on it (the same reward);
    or, with ``warm``, a new training that starts from the parent's policy saved there (another reward: its steps
    count from 0, the reward statistics start afresh). With ``ppo``'s settings: its networks must have the saved
    shapes."""
    ancestors = 0
    if warm is not None and resume is None:
        venv = start.warm_normalization(warm, contract, ppo.gamma)
        venv.norm_obs, venv.norm_reward = ppo.normalize_obs, ppo.normalize_reward
        model = new_ppo(venv, ppo, seed)
        ancestors = max(1, start.load_parent(model, warm))
    elif resume is not None:
        venv = load_normalization(resume / NORMALIZATION_FILE, contract)
        model = new_ppo(venv, ppo, seed)
        load_parameters(model, resume / POLICY_FILE)
        model.num_timesteps = saved_timesteps(resume / POLICY_FILE)
    else:
        venv = VecNormalize(contract, norm_obs=ppo.normalize_obs, norm_reward=ppo.normalize_reward, gamma=ppo.gamma)
        model = new_ppo(venv, ppo, seed)
    model.set_logger(learner_logger(logdir))
    return Model(model, venv, int(model.num_timesteps), resumed=resume is not None, ancestor_timesteps=ancestors)


def can_resume(directory: Path) -> bool:
    """Whether ``directory`` holds a training's saved files to continue."""
    return (directory / POLICY_FILE).exists() and (directory / NORMALIZATION_FILE).exists()


@contextmanager
def _rollouts_of(model: PPO, n_steps: int) -> Iterator[None]:
    """``model`` collects rollouts of ``n_steps`` vector steps inside the block (its buffer sized to match)."""
    saved = model.n_steps, model.rollout_buffer
    model.n_steps = n_steps
    model.rollout_buffer = type(model.rollout_buffer)(
        n_steps,
        model.observation_space,
        model.action_space,
        device=model.device,
        gamma=model.gamma,
        gae_lambda=model.gae_lambda,
        n_envs=model.n_envs,
        **(model.rollout_buffer_kwargs or {}),
    )
    try:
        yield
    finally:
        model.n_steps, model.rollout_buffer = saved


def learn(model: Model, total_timesteps: int, callback: BaseCallback) -> None:
    """Train until ``model.ppo.num_timesteps`` reaches ``total_timesteps``: whole rollouts of n_steps x N, then one
    shorter rollout for what is left (rounded up to whole vector steps), so that a training of T steps trains T,
    not T plus most of a rollout (with 64 envs x 64 steps, a 2,048-step screen would train 4,096). A callback
    that returns False stops it, as it stops SB3's ``learn``."""
    ppo = model.ppo
    n = ppo.n_envs
    per_rollout = n * ppo.n_steps
    whole = (total_timesteps - ppo.num_timesteps) // per_rollout * per_rollout
    if whole > 0:
        goal = ppo.num_timesteps + whole
        ppo.learn(whole, callback=callback, reset_num_timesteps=False)
        if ppo.num_timesteps < goal:  # the callback stopped the training
            return
    rest = total_timesteps - ppo.num_timesteps
    if rest > 0:
        with _rollouts_of(ppo, -(-rest // n)):
            ppo.learn(rest, callback=callback, reset_num_timesteps=False)


def snapshot(model: Model, workdir: Path) -> None:
    """Where a running training keeps its latest checkpoint's policy.zip and vecnormalize.pkl: a training stopped
    half-way (its worker shut down) hands it back with the job, and the next attempt continues from it.

    Replaces ``workdir/resume`` with the model as it is now: written beside it, then renamed, so that a stop at any
    moment leaves either the previous snapshot or this one, whole."""
    fresh, final = workdir / f".{RESUME_DIR}.tmp", workdir / RESUME_DIR
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    save(model, fresh)
    old = workdir / f".{RESUME_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    fresh.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def save(model: Model, directory: Path) -> dict[str, str]:
    """Write policy.zip and vecnormalize.pkl into ``directory``; returns the artifacts by role."""
    model.ppo.save(directory / POLICY_FILE)
    model.venv.save(str(directory / NORMALIZATION_FILE))
    return {"policy": POLICY_FILE, "normalization": NORMALIZATION_FILE}
