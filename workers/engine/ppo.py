"""Stable-Baselines3 PPO built from an env's PPO settings (one place, so every training uses the same recipe)."""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from envs.spec import PPODefaults


def new_ppo(venv: VecEnv, ppo: PPODefaults, seed: int) -> PPO:
    """A fresh CPU PPO with an MLP policy on ``venv`` (a VecNormalize), configured by ``ppo``."""
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        learning_rate=ppo.learning_rate,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs={"net_arch": list(ppo.net_arch), "log_std_init": ppo.log_std_init},
        seed=seed,
        device="cpu",
        verbose=0,
    )
