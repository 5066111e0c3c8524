"""Hostile reward and fitness programs (issue 16), each with a one-line note on what it tries.

They are written as an attacker would write them: they pass for honest programs where they
are watched and change where they think they are not. The tests that use them say which
defence must stop each one (tests/workers/program/test_state.py, tests/workers/engine/...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hostile:
    note: str
    """What the program tries, in one line."""
    source: str


def _reward(head: str, body: str) -> str:
    return f"import numpy as np\n\n{head}\n\ndef compute_reward(state, action):\n{body}"


# ------------------------------------------------------------------ state that outlives a call (items 1-4)

STATE = {
    "slice counter": Hostile(
        "keeps a call counter in the list inside a module-level slice, then pays for running backwards",
        _reward(
            "CALLS = slice([], None)\n",
            "    CALLS.start.append(1)\n    late = len(CALLS.start) > 3\n"
            "    forward = state.x_velocity\n    return np.where(late, -forward, forward), {'forward': forward}\n",
        ),
    ),
    "slice in a dict": Hostile(
        "hides the slice's list one container deeper, in a dict of tuples",
        _reward(
            "BOX = {'k': (slice(None, []),)}\n",
            "    BOX['k'][0].stop.append(1)\n    n = len(BOX['k'][0].stop)\n"
            "    return state.x_velocity * n, {'forward': state.x_velocity * n}\n",
        ),
    ),
    "structured scalar": Hostile(
        "counts in np.zeros(1, dtype=[('n', 'f8')])[0], a writable view, and turns constant after the dry run",
        _reward(
            "COUNTER = np.zeros(1, dtype=[('n', 'f8')])[0]\n",
            "    COUNTER['n'] += 1.0\n    r = np.where(COUNTER['n'] > 3, 1.0, state.x_velocity)\n"
            "    return r, {'forward': r}\n",
        ),
    ),
    "structured scalar in a default": Hostile(
        "the same view, kept as a function's default argument",
        _reward(
            "def bump(counter=np.zeros(1, dtype=[('n', 'f8')])[0]):\n    counter['n'] += 1.0\n"
            "    return counter['n']\n",
            "    n = bump()\n    return state.x_velocity * n, {'forward': state.x_velocity * n}\n",
        ),
    ),
    "structured row of a structured array": Hostile(
        "counts in a field of a structured array's row",
        _reward(
            "TABLE = np.zeros(2, dtype=[('n', 'f8'), ('m', 'i8')])\n",
            "    row = TABLE[0]\n    row['n'] += 1.0\n"
            "    return state.x_velocity * TABLE[0]['n'], {'forward': state.x_velocity * TABLE[0]['n']}\n",
        ),
    ),
    "ufunc.at": Hostile(
        "np.add.at ignores the read-only flag: counts in a frozen module-level array (1, 2, 3, 4, 5 on five episodes)",
        _reward(
            "CALLS = np.zeros(1)\n",
            "    np.add.at(CALLS, [0], 1.0)\n    return state.x_velocity + CALLS[0], {'forward': state.x_velocity}\n",
        ),
    ),
    "ufunc.at through an alias": Hostile(
        "the same write through a module-level alias of the ufunc",
        _reward(
            "CALLS = np.zeros(1)\nADD = np.add\n",
            "    ADD.at(CALLS, [0], 1.0)\n    return state.x_velocity + CALLS[0], {'forward': state.x_velocity}\n",
        ),
    ),
    "dtype metadata": Hostile(
        "keeps a list in the metadata of a module-level array's dtype",
        _reward(
            "M = np.zeros(1, dtype={'names': ['n'], 'formats': ['f8'], 'metadata': {'calls': []}})\n",
            "    state.x_velocity.sum()\n    return state.x_velocity, {'forward': state.x_velocity}\n",
        ),
    ),
    "flat iterator": Hostile(
        "advances a module-level flat iterator once a call",
        _reward(
            "STEPS = np.arange(10 ** 6).flat\n",
            "    for n in STEPS:\n        break\n    return state.x_velocity * n, {'forward': state.x_velocity}\n",
        ),
    ),
    "exception holding a list": Hostile(
        "keeps a list in a module-level exception's arguments",
        _reward(
            "BOX = ValueError([])\n",
            "    return state.x_velocity, {'forward': state.x_velocity}\n",
        ),
    ),
}
