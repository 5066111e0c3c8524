"""The PPO training loop: rollouts of the batched env under the candidate reward, then learner updates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workers.engine.learner import Learner
from workers.engine.wrapper import ContractReward

OnStep = Callable[[int], None]
"""Called after every vector step with the training's step count (checkpoints, progress reports)."""


def _gae(
    rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_value: np.ndarray, gamma: float, lam: float
) -> np.ndarray:
    """Generalised advantage estimates over a (T, N) rollout; ``dones[t]`` ends the episode after step t."""
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in reversed(range(len(rewards))):
        next_value = last_value if t == len(rewards) - 1 else values[t + 1]
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * alive - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
    return advantages


def learn(
    learner: Learner,
    env: ContractReward,
    total_timesteps: int,
    *,
    on_step: OnStep,
    on_rollout_end: Callable[[], None],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Train until ``learner.num_timesteps`` reaches ``total_timesteps`` (rollouts of n_steps x N, the last
    one shorter), or ``stop()`` says so after a rollout."""
    ppo, norm = learner.ppo, learner.norm
    n, horizon = env.num_envs, ppo.n_steps
    obs_dim, act_dim = learner.obs_dim, learner.act_dim
    buf_obs = np.zeros((horizon, n, obs_dim), dtype=np.float32)
    buf_act = np.zeros((horizon, n, act_dim), dtype=np.float32)
    buf_logp = np.zeros((horizon, n), dtype=np.float32)
    buf_val = np.zeros((horizon, n), dtype=np.float32)
    buf_rew = np.zeros((horizon, n), dtype=np.float32)
    buf_done = np.zeros((horizon, n), dtype=np.float32)
    returns = np.zeros(n)
    obs = env.reset()
    while learner.num_timesteps < total_timesteps and not stop():
        # The last rollout is cut to what is left of the budget (rounded up to whole vector steps), so that
        # a training of T steps trains T, not T plus most of a rollout of n_steps x N.
        steps = min(horizon, -(-(total_timesteps - learner.num_timesteps) // n))
        for t in range(steps):
            x = norm.observe(obs, update=True)
            action, logp, value = learner.act(x)
            step = env.reward_step(action)
            reward = norm.scale_reward(step.reward, returns)
            if step.truncated.any():  # a time limit is no end: bootstrap from the value of where it stopped
                cut = np.flatnonzero(step.truncated)
                reward[cut] += ppo.gamma * learner.value(norm.observe(step.final_obs[cut], update=False))
            returns[step.done] = 0.0
            buf_obs[t], buf_act[t], buf_logp[t], buf_val[t] = x, action, logp, value
            buf_rew[t], buf_done[t] = reward, step.done
            obs = step.obs
            learner.num_timesteps += n
            on_step(learner.num_timesteps)
        on_rollout_end()
        last_value = learner.value(norm.observe(obs, update=False))
        values = buf_val[:steps]
        advantages = _gae(buf_rew[:steps], values, buf_done[:steps], last_value, ppo.gamma, ppo.gae_lambda)
        learner.update(
            {
                "obs": buf_obs[:steps].reshape(-1, obs_dim),
                "actions": buf_act[:steps].reshape(-1, act_dim),
                "logprobs": buf_logp[:steps].reshape(-1),
                "advantages": advantages.reshape(-1),
                "returns": (advantages + values).reshape(-1),
            }
        )
