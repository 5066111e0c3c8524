"""What the dry run checks once, checked again during training: a program cannot pass the dry run and change later.

The dry run sees a few hundred sampled states; a program could behave only while it is
watched (gate on the batch size, on the step, on values training reaches later). During
training, every call's output is checked (shapes, finite, bounded: ``call_reward``), and on
sampled steps a few envs are called alone and compared with their batch values, the
component names are held to those of the first call, and the cost of the reward is
compared with the cost of simulating the batch. Everything here works on the state view
and the action array only, whatever vec env produced them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.state import State, select
from workers.program.program import Program, ProgramError, call_reward

COST_FLOOR_MS = 1.0
"""A reward call cheaper than this is never too slow, whatever the simulation costs (timers are noisy there)."""


def check_alone(
    program: Program,
    state: State,
    action: np.ndarray,
    reward: np.ndarray,
    components: dict[str, np.ndarray],
    envs: Sequence[int],
) -> None:
    """Each env in ``envs`` must get, called alone, what it got in the batch; raises ``ProgramError`` otherwise.

    A reduction without ``axis=-1`` (``np.sum(action ** 2)``, ``x - np.mean(x)``) mixes the
    envs of a batch; PPO would then credit every env with the others' progress.
    """
    n = action.shape[0]
    for i in envs:
        alone, comps, _ = call_reward(program, select(state, [i]), action[i : i + 1])
        pairs = [("the reward", alone[0], reward[i])]
        pairs += [(f"component '{k}'", comps[k][0], components[k][i]) for k in components if k in comps]
        for what, single, batched in pairs:
            if not np.isclose(single, batched, rtol=1e-6, atol=1e-9):
                raise ProgramError(
                    f"{what} of one env depends on the other envs in the batch: env {i} gets {single:.6g} when "
                    f"called alone and {batched:.6g} in a batch of {n}. Reduce per env with axis=-1 "
                    "(np.sum(np.square(action), axis=-1)), never over the batch axis (np.sum(x), np.mean(x) "
                    "without an axis), and keep no state between calls."
                )


def cost_error(reward_ms: float, step_ms: float, n: int, ratio: float, where: str) -> str | None:
    """Why a reward that takes ``reward_ms`` per call of ``n`` envs is too slow next to ``step_ms``; None if it is not."""
    if reward_ms <= max(COST_FLOOR_MS, ratio * step_ms):
        return None
    return (
        f"one call of compute_reward takes {reward_ms:.1f} ms for {n} envs {where}, {reward_ms / step_ms:.0f}× "
        f"the {step_ms:.2f} ms that simulating them takes; the limit is {ratio:g}×. Replace Python loops over "
        "the batch and repeated work with array operations (np.where, np.sum(..., axis=-1))."
    )


class Guard:
    """Run-time checks of one training's reward calls (see the module docstring).

    ``every``: mean number of vector steps between two independence checks (the steps are
    drawn at random); ``cost_ratio``: the most a reward call may cost, as a multiple of the
    simulation of the same batch, compared as medians over windows of ``cost_window`` calls.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        every: int = 50,
        envs_per_check: int = 2,
        cost_ratio: float = 10.0,
        cost_window: int = 200,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.every = every
        self.envs_per_check = envs_per_check
        self.cost_ratio = cost_ratio
        self.cost_window = cost_window
        self.names: tuple[str, ...] | None = None
        self.calls = 0
        self.next_check = 0
        self.checks = 0
        self._reward_seconds: list[float] = []
        self._step_seconds: list[float] = []

    def after_call(
        self,
        program: Program,
        state: State,
        action: np.ndarray,
        reward: np.ndarray,
        components: dict[str, np.ndarray],
        *,
        step_seconds: float,
        reward_seconds: float,
    ) -> None:
        """Check one call that has passed ``call_reward``; raises ``ProgramError`` (without the training step)."""
        names = tuple(components)
        if self.names is None:
            self.names = names
        elif names != self.names and sorted(names) != sorted(self.names):
            raise ProgramError(
                f"the component names changed during training: {sorted(self.names)} at the first step, "
                f"{sorted(names)} now. Return the same components on every call."
            )
        if self.calls == self.next_check:
            n = action.shape[0]
            envs = self.rng.choice(n, size=min(self.envs_per_check, n), replace=False)
            check_alone(program, state, action, reward, components, [int(i) for i in envs])
            self.checks += 1
            self.next_check += int(self.rng.integers(1, 2 * self.every))
        self.calls += 1
        self._reward_seconds.append(reward_seconds)
        self._step_seconds.append(step_seconds)
        if len(self._reward_seconds) >= self.cost_window:  # medians: a pause for garbage collection is no verdict
            calls = len(self._reward_seconds)
            reward_ms, step_ms = 1000 * np.median(self._reward_seconds), 1000 * np.median(self._step_seconds)
            self._reward_seconds.clear()
            self._step_seconds.clear()
            error = cost_error(reward_ms, step_ms, action.shape[0], self.cost_ratio, f"(median of {calls} calls)")
            if error:
                raise ProgramError(error)
