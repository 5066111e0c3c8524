"""What the dry run checks once, checked again during training: a program cannot pass the dry run and change later.

The dry run sees a few hundred sampled states and a few real batches; a program could behave
only while it is watched (gate on the batch size, on the step, on values training reaches
later). During training, every call's output is checked (shapes, finite, bounded:
``call_reward``), every call is charged to the cost budget (``workers.engine.cost``), the
component names are held to those of the first call, and on the first call and on calls
drawn at random a few envs are called alone and compared with their batch values. The draws
come from the operating system's entropy, never from the job's seed, so a program cannot
know which of its calls are compared. Everything here works on the state view and the action
array only, whatever vec env produced them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from envs.state import State, select
from workers.engine.cost import CostBudget
from workers.program.program import Program, ProgramError, call_reward

ALONE_ATOL = 1e-6
"""Largest difference between an env's value alone and in a batch that is never a finding..."""
ALONE_RTOL = 1e-5
"""...plus this fraction of the spread of that value across the batch's envs. Not of the value itself: a constant
offset (``1e5 + own_speed - batch_mean``) would then widen the tolerance until it swallowed the mixing term."""


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
        pairs = [("the reward", alone[0], reward)]
        pairs += [(f"component '{k}'", comps[k][0], components[k]) for k in components if k in comps]
        for what, single, batch in pairs:
            tolerance = ALONE_ATOL + ALONE_RTOL * float(np.ptp(batch))
            if not abs(single - batch[i]) <= tolerance:
                raise ProgramError(
                    f"{what} of one env depends on the other envs in the batch: env {i} gets {single:.9g} when "
                    f"called alone and {batch[i]:.9g} in a batch of {n} (a difference of {abs(single - batch[i]):.3g}, "
                    f"more than the {tolerance:.2g} rounding allows). Reduce per env with axis=-1 "
                    "(np.sum(np.square(action), axis=-1)), never over the batch axis (np.sum(x), np.mean(x) "
                    "without an axis), and keep no state between calls."
                )


class Guard:
    """Run-time checks of one training's reward calls (see the module docstring).

    ``every``: mean number of calls between two independence checks (each call is checked with
    probability 1/every, the first always); ``cost_ratio``: the most the reward calls may cost,
    as a multiple of simulating the same batches (``CostBudget``).
    """

    def __init__(self, *, every: int = 10, envs_per_check: int = 2, cost_ratio: float = 10.0) -> None:
        self.rng = np.random.default_rng(secrets.randbits(128))  # never the job's seed: see the module docstring
        self.every = every
        self.envs_per_check = envs_per_check
        self.cost = CostBudget("compute_reward", ratio=cost_ratio)
        self.names: tuple[str, ...] | None = None
        self.calls = 0
        self.checks = 0

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
        n = action.shape[0]
        self.cost.charge(reward_seconds, step_seconds, f"{n} envs")
        names = tuple(components)
        if self.names is None:
            self.names = names
        elif names != self.names and sorted(names) != sorted(self.names):
            raise ProgramError(
                f"the component names changed during training: {sorted(self.names)} at the first step, "
                f"{sorted(names)} now. Return the same components on every call."
            )
        if self.calls == 0 or self.rng.random() * self.every < 1.0:
            envs = self.rng.choice(n, size=min(self.envs_per_check, n), replace=False)
            check_alone(program, state, action, reward, components, [int(i) for i in envs])
            self.checks += 1
        self.calls += 1
