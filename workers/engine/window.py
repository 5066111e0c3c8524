"""What happened in training between two checkpoints: the reward's per-component statistics and episodes
(``Window``, filled by ``ContractReward``) and the learner's own statistics (``LearnerWindow``, read from SB3's
logger after each policy update)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class RunningStats:
    """Mean, min and max of named streams of arrays, without keeping them; one row of values per name.

    ``add`` takes all names of a step at once, so a step costs a few array operations
    whatever the number of components.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.total = np.zeros(0)
        self.count = np.zeros(0)
        self.low = np.zeros(0)
        self.high = np.zeros(0)
        self._rows: np.ndarray | None = None
        self._names: tuple[str, ...] = ()

    def add(self, names: tuple[str, ...], values: np.ndarray) -> None:
        """Accumulate ``values`` of shape (len(names), N)."""
        if names != self._names:
            for name in names:
                if name not in self.index:
                    self.index[name] = len(self.index)
                    self.total = np.append(self.total, 0.0)
                    self.count = np.append(self.count, 0.0)
                    self.low = np.append(self.low, np.inf)
                    self.high = np.append(self.high, -np.inf)
            order = [self.index[n] for n in names]
            self._names = names
            self._rows = None if order == list(range(len(self.index))) else np.array(order)
        rows = self._rows
        if rows is None:  # the usual case: the same names in the same order every step
            self.total += values.sum(axis=1)
            self.count += values.shape[1]
            np.minimum(self.low, values.min(axis=1), out=self.low)
            np.maximum(self.high, values.max(axis=1), out=self.high)
            return
        self.total[rows] += values.sum(axis=1)
        self.count[rows] += values.shape[1]
        self.low[rows] = np.minimum(self.low[rows], values.min(axis=1))
        self.high[rows] = np.maximum(self.high[rows], values.max(axis=1))

    def summary(self, name: str) -> dict[str, float] | None:
        i = self.index.get(name)
        if i is None or not self.count[i]:
            return None
        return {"mean": float(self.total[i] / self.count[i]), "min": float(self.low[i]), "max": float(self.high[i])}

    def names(self) -> list[str]:
        return list(self.index)


REWARD = "\0reward"
"""The row of the reward itself (a name no component can have)."""
ENV_REWARD = "\0env_reward"
"""The row of the env's own reward, per step: like ``REWARD``, it exists from the first step, whatever the budget
(an episode return needs an episode to end, which 64 envs × 30k steps never see)."""
ROWS = (REWARD, ENV_REWARD)


@dataclass
class Window:
    """What happened in training since the last checkpoint."""

    stats: RunningStats = field(default_factory=RunningStats)
    episode_returns: list[float] = field(default_factory=list)
    episode_env_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    terminated: int = 0
    truncated: int = 0

    def summary(self) -> dict:
        def mean(xs: list) -> float | None:
            return float(np.mean(xs)) if xs else None

        return {
            "components": {k: self.stats.summary(k) for k in self.stats.names() if k not in ROWS},
            "reward": self.stats.summary(REWARD),
            "env_reward": self.stats.summary(ENV_REWARD),
            "episodes": len(self.episode_lengths),
            "episode_return": mean(self.episode_returns),
            "episode_env_return": mean(self.episode_env_returns),
            "episode_length": mean(self.episode_lengths),
            "terminated": self.terminated,
            "truncated": self.truncated,
        }


LEARNER_KEYS = {
    "approx_kl": "train/approx_kl",
    "clip_fraction": "train/clip_fraction",
    "explained_variance": "train/explained_variance",
    "entropy": "train/entropy_loss",
    "policy_loss": "train/policy_gradient_loss",
    "value_loss": "train/value_loss",
    "std": "train/std",
    "learning_rate": "train/learning_rate",
}
"""Each learner statistic kept in a checkpoint, and the key SB3's PPO logs it under (``entropy`` is logged
negated, as ``entropy_loss``)."""


@dataclass
class LearnerWindow:
    """SB3 PPO's statistics of each policy update since the last checkpoint.

    ``observe`` reads them from the logger's current values, where ``PPO.train`` records them and where they stay
    until the next dump; an update is counted once, by its ``train/n_updates``.
    """

    updates: list[dict[str, float]] = field(default_factory=list)
    last_update: int = -1

    def observe(self, values: dict) -> None:
        """Keep the statistics of the update in ``values`` (``Logger.name_to_value``), if not kept already."""
        n = values.get("train/n_updates")
        if n is None or int(n) <= self.last_update:
            return
        self.last_update = int(n)
        update = {name: float(values[key]) for name, key in LEARNER_KEYS.items() if key in values}
        if "entropy" in update:
            update["entropy"] = -update["entropy"]
        self.updates.append(update)

    def take(self) -> dict[str, float | int] | None:
        """Means over the updates since the last call (``updates``: how many), or None when there were none."""
        updates, self.updates = self.updates, []
        if not updates:
            return None
        names = [name for name in LEARNER_KEYS if all(name in u for u in updates)]
        summary: dict[str, float | int] = {name: float(np.mean([u[name] for u in updates])) for name in names}
        summary["updates"] = len(updates)
        return summary
