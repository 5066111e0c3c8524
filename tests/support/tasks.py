"""The tiny task the API, dashboard and search tests start from: one HalfCheetah candidate of 2,048 steps, no
baselines, no final seeds, 100-step episodes; as a ``TaskSpec``, as the API's body and as the new-task form."""

from __future__ import annotations

from typing import Any

from app.search.service import TaskSpec

TRAIN = {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2}
"""Training options small enough for a shared two-core machine."""
TINY: dict[str, Any] = {
    "env": "HalfCheetah-v5",
    "description": "make the cheetah run forward",
    "designer": "offline",
    "iterations": 1,
    "samples": 1,
    "timesteps": 2048,
    "options": {"final_seeds": 0, "baselines": False, "train": TRAIN},
}
"""The task as the API's body (POST /api/v1/tasks)."""


def tiny_spec(**changes: Any) -> TaskSpec:
    """``TINY`` with ``changes`` (``options`` are merged into its options) as a spec."""
    options = TINY["options"] | changes.pop("options", {})
    return TaskSpec.model_validate(TINY | changes | {"options": options})


def tiny_form() -> dict[str, str]:
    """``TINY`` as the dashboard's new-task form sends it (the form has no field for the number of checkpoints;
    an unticked checkbox, baselines here, is not sent; a ticked one is sent as "on")."""
    train = TINY["options"]["train"]
    return {
        "env": TINY["env"],
        "description": TINY["description"],
        "fitness_kind": "metric",
        "metric": "forward_distance",
        "designer": TINY["designer"],
        "iterations": str(TINY["iterations"]),
        "samples": str(TINY["samples"]),
        "timesteps": str(TINY["timesteps"]),
        "seed": "0",
        "final_seeds": str(TINY["options"]["final_seeds"]),
        "eval_episodes": str(train["eval_episodes"]),
        "episode_steps": str(train["episode_steps"]),
        "continue_from_parent": "on",
        "trajectory_screen": "on",
    }
