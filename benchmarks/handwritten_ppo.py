"""The hand-written PPO the engine trained with before SB3 became its learner, kept only to measure against.

A frozen copy of ``workers/engine/learner.py`` and ``workers/engine/ppo.py`` as they were at the commit that
replaced them (CleanRL's ``ppo_continuous_action`` sized for many envs and large minibatches, SB3's defaults
and VecNormalize-style scaling built in), without its saving and loading. ``learner_comparison.py`` runs it side
by side with SB3's PPO on the same batched engine; nothing in the product imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.spec import PPODefaults
from workers.engine.wrapper import ContractReward


class RunningMeanStd:
    """Mean and variance of a stream of (N, ...) batches (Chan's parallel update, as SB3's)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        mean, var, count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        m2 = self.var * self.count + var * count + np.square(delta) * self.count * count / total
        self.var, self.count = m2 / total, total

    def state(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.as_tensor(self.mean), "var": torch.as_tensor(self.var), "count": torch.tensor(self.count)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.mean, self.var, self.count = state["mean"].numpy(), state["var"].numpy(), float(state["count"])


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else np.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers += [linear] if last else [linear, nn.Tanh()]
    return nn.Sequential(*layers)


class Agent(nn.Module):
    """Gaussian policy and value function, separate MLPs (SB3's MlpPolicy for PPO)."""

    def __init__(self, obs_dim: int, act_dim: int, net_arch: tuple[int, ...], log_std_init: float) -> None:
        super().__init__()
        self.actor = _mlp([obs_dim, *net_arch, act_dim], 0.01)
        self.critic = _mlp([obs_dim, *net_arch, 1], 1.0)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.actor(obs), self.log_std.exp())


@dataclass
class Normalizer:
    """SB3 VecNormalize's observation and reward scaling (clipped at 10)."""

    obs: RunningMeanStd
    ret: RunningMeanStd
    gamma: float
    norm_obs: bool = True
    norm_reward: bool = True
    clip: float = 10.0
    eps: float = 1e-8

    def observe(self, obs: np.ndarray, *, update: bool) -> np.ndarray:
        if not self.norm_obs:
            return obs.astype(np.float32)
        if update:
            self.obs.update(obs)
        return np.clip((obs - self.obs.mean) / np.sqrt(self.obs.var + self.eps), -self.clip, self.clip).astype(
            np.float32
        )

    def scale_reward(self, reward: np.ndarray, returns: np.ndarray) -> np.ndarray:
        """``reward`` scaled by the spread of discounted returns (``returns`` is updated in place)."""
        if not self.norm_reward:
            return reward
        returns *= self.gamma
        returns += reward
        self.ret.update(returns)
        return np.clip(reward / np.sqrt(self.ret.var + self.eps), -self.clip, self.clip)


class Learner:
    """The agent, its optimiser and normalisation; ``act`` during rollouts, ``update`` on a rollout."""

    def __init__(self, obs_dim: int, act_dim: int, ppo: PPODefaults, seed: int) -> None:
        torch.manual_seed(seed)
        self.ppo = ppo
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.agent = Agent(obs_dim, act_dim, ppo.net_arch, ppo.log_std_init)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=ppo.learning_rate, eps=1e-5)
        self.norm = Normalizer(
            RunningMeanStd((obs_dim,)), RunningMeanStd(), ppo.gamma, ppo.normalize_obs, ppo.normalize_reward
        )
        self.num_timesteps = 0
        self.generator = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sampled actions, their log-probabilities and the values, for normalised observations."""
        x = torch.from_numpy(obs)
        dist = self.agent.dist(x)
        action = dist.sample()
        return action.numpy(), dist.log_prob(action).sum(-1).numpy(), self.agent.value(x).numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.value(torch.from_numpy(obs)).numpy()

    @torch.no_grad()
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for raw observations (normalised as in training, statistics frozen)."""
        return self.agent.actor(torch.from_numpy(self.norm.observe(np.asarray(obs), update=False))).numpy()

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """PPO epochs over one rollout (flattened (T*N, ...) arrays): obs, actions, logprobs, advantages, returns."""
        ppo = self.ppo
        t = {k: torch.from_numpy(v) for k, v in batch.items()}
        size = len(t["obs"])
        mb = min(ppo.batch_size, size)
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        updates = 0
        for _ in range(ppo.n_epochs):
            order = torch.from_numpy(self.generator.permutation(size))
            for start in range(0, size - mb + 1, mb):
                i = order[start : start + mb]
                dist = self.agent.dist(t["obs"][i])
                logp = dist.log_prob(t["actions"][i]).sum(-1)
                ratio = (logp - t["logprobs"][i]).exp()
                adv = t["advantages"][i]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg = -torch.min(adv * ratio, adv * ratio.clamp(1 - ppo.clip_range, 1 + ppo.clip_range)).mean()
                v_loss = (self.agent.value(t["obs"][i]) - t["returns"][i]).square().mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = pg + ppo.vf_coef * v_loss - ppo.ent_coef * entropy
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.agent.parameters(), ppo.max_grad_norm)
                self.optimizer.step()
                updates += 1
                stats["policy_loss"] += pg.item()
                stats["value_loss"] += v_loss.item()
                stats["entropy"] += entropy.item()
                stats["clip_fraction"] += float(((ratio - 1).abs() > ppo.clip_range).float().mean())
        return {k: v / max(1, updates) for k, v in stats.items()}


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
