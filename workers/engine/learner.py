"""A compact PPO in PyTorch (CleanRL's ``ppo_continuous_action``), sized for many envs and large minibatches.

Stable-Baselines3's PPO costs more per sample than the batched simulator (its rollout
buffer and callbacks run per env step in Python), so the engine trains with this one:
the same algorithm and defaults as SB3's (separate tanh MLPs for policy and value,
state-independent log std, clipped surrogate, GAE, advantage normalisation per
minibatch, value bootstrapped on time-limit truncation, gradient clipping), with SB3
VecNormalize's observation and reward normalisation built in. Its whole state
(networks, optimiser, normalisation, step count) is one ``policy.pt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from envs.spec import PPODefaults

POLICY_FILE = "policy.pt"
"""The trained policy with its normalisation, as every consumer loads it (``load_policy``)."""


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

    # -------------------------------------------------------------------------------- the saved artifact

    def save(self, path: Path) -> None:
        """Everything needed to act (``load_policy``) or to continue training (``Learner.load``)."""
        torch.save(
            {
                "format": 1,
                "obs_dim": self.obs_dim,
                "act_dim": self.act_dim,
                "net_arch": list(self.ppo.net_arch),
                "log_std_init": self.ppo.log_std_init,
                "agent": self.agent.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "obs_rms": self.norm.obs.state(),
                "ret_rms": self.norm.ret.state(),
                "norm_obs": self.norm.norm_obs,
                "num_timesteps": self.num_timesteps,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, ppo: PPODefaults, seed: int) -> Learner:
        """A learner continued from ``path``, with ``ppo``'s settings (its networks must have the saved shape)."""
        saved = _read(path)
        learner = cls(int(saved["obs_dim"]), int(saved["act_dim"]), ppo, seed)
        learner.agent.load_state_dict(saved["agent"])
        learner.optimizer.load_state_dict(saved["optimizer"])
        learner.norm.obs.load(saved["obs_rms"])
        learner.norm.ret.load(saved["ret_rms"])
        learner.num_timesteps = int(saved["num_timesteps"])
        return learner


def _read(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"{path} is not a rewardsmith policy ({type(e).__name__}: {e}); train one to make it"
        ) from None


def saved_timesteps(path: Path) -> int:
    """The training steps the policy saved in ``path`` was trained for."""
    return int(_read(path)["num_timesteps"])


def load_policy(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The deterministic policy saved in ``path`` (policy.pt): raw (N, obs) observations -> (N, act) actions."""
    saved = _read(path)
    agent = Agent(int(saved["obs_dim"]), int(saved["act_dim"]), tuple(saved["net_arch"]), float(saved["log_std_init"]))
    agent.load_state_dict(saved["agent"])
    obs = RunningMeanStd()
    obs.load(saved["obs_rms"])
    norm = Normalizer(obs, RunningMeanStd(), 0.99, bool(saved["norm_obs"]), False)

    @torch.no_grad()
    def policy(observations: np.ndarray) -> np.ndarray:
        x = norm.observe(np.atleast_2d(np.asarray(observations, dtype=np.float64)), update=False)
        return agent.actor(torch.from_numpy(x)).numpy()

    return policy
