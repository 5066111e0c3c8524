"""Cost budgets: what a program's calls may cost, per call and in total, next to what simulating the same work costs.

A program can be cheap where it is timed and slow elsewhere: at the training's batch size
and not at the dry run's, on 45 % of calls, on full-length evaluation episodes. A median
over a window of calls never fills if the training is slow enough, so every call is charged
from the first one, at the size it really has:

- a call may cost at most ``ratio`` times simulating the same work, or ``floor`` seconds if
  that is more (timers are noisy below it); the allowances of all calls add up, and the
  program's total may not exceed that sum plus ``grace`` seconds (a garbage-collector pause);
- and no single call may take longer than ``CALL_LIMIT`` times its allowance, or
  ``CALL_LIMIT_SECONDS`` if that is more, whatever the program saved on earlier calls.

So a training spends at most ``ratio`` times its simulation time (plus the grace) in the
program, and no call can stall it for long. The error gives the figures and names the program.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.program.program import ProgramError

REWARD_FLOOR_SECONDS = 0.001
"""A reward call cheaper than this is never too slow, whatever the simulation costs."""
FITNESS_FLOOR_SECONDS = 0.02
"""A fitness call cheaper than this is never too slow (one call per evaluation episode)."""
GRACE_SECONDS = 0.25
"""Time a program may spend beyond its budget in all (a garbage-collector pause, a first call that warms up)."""
CALL_LIMIT = 3.0
"""No single call may take more than this many times its allowance..."""
CALL_LIMIT_SECONDS = 1.0
"""...or this many seconds, whichever is more."""

_ADVICE = {
    "compute_reward": "Replace Python loops over the batch and repeated work with array operations "
    "(np.where, np.sum(..., axis=-1)).",
    "compute_fitness": "Reduce over the episode with array operations (np.sum(traj.x_velocity) * traj.dt) "
    "instead of Python loops over its steps.",
}


@dataclass
class CostBudget:
    """The running account of one program's calls (see the module docstring).

    ``what`` names the entry point (``compute_reward``, ``compute_fitness``); ``work`` says what
    one call covers, for messages (``"64 envs"``, ``"a 1,000-step episode"``).
    """

    what: str
    ratio: float
    floor_seconds: float = REWARD_FLOOR_SECONDS
    grace_seconds: float = GRACE_SECONDS
    calls: int = 0
    spent: float = 0.0
    simulated: float = 0.0
    allowed: float = 0.0

    def charge(self, seconds: float, simulated: float, work: str) -> None:
        """Record one call that took ``seconds`` for work that took ``simulated`` seconds to simulate; raises
        ``ProgramError`` with the figures when the call or the total is over the budget."""
        allowance = max(self.floor_seconds, self.ratio * simulated)
        self.calls += 1
        self.spent += seconds
        self.simulated += simulated
        self.allowed += allowance
        limit = max(CALL_LIMIT_SECONDS, CALL_LIMIT * allowance)
        if seconds > limit:
            raise ProgramError(
                f"one call of {self.what} took {_ms(seconds)} for {work} (call {self.calls:,}), over the "
                f"{_ms(limit)} any one call may take (simulating the same work took {_ms(simulated)}). "
                f"{_ADVICE.get(self.what, '')}"
            )
        if self.spent > self.allowed + self.grace_seconds:
            calls = "1 call" if self.calls == 1 else f"{self.calls:,} calls"
            raise ProgramError(
                f"{self.what} has taken {self.spent:.2f} s in its first {calls} of {work} (mean "
                f"{_ms(self.spent / self.calls)} a call), {self.spent / max(self.simulated, 1e-9):.0f}× the "
                f"{_ms(self.simulated)} that simulating the same work took; the limit is {self.ratio:g}× "
                f"(each call may take at least {_ms(self.floor_seconds)}). {_ADVICE.get(self.what, '')}"
            )


def _ms(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1.0 else f"{seconds * 1000:.1f} ms"
