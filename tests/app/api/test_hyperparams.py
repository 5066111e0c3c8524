"""RL Zoo-style PPO hyperparameters through POST /tasks: stored as given, sent to the engine in SB3's names, and
refused with a 422 naming the key when outside the one bounded schema."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.db.models import Task
from app.search.rules.options import options_of
from tests.app.api.harness import API, Api
from tests.app.api.test_tasks import count_tasks
from tests.support.tasks import TINY

RL_ZOO = {
    "normalize": True,
    "n_envs": 4,
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 5,
    "learning_rate": "lin_3e-4",
    "clip_range": 0.2,
    "ent_coef": 0.001,
    "gamma": 0.98,
    "gae_lambda": 0.92,
    "vf_coef": 0.5,
    "max_grad_norm": 0.8,
    "policy_kwargs": "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[64], vf=[64]))",
}


def with_ppo(ppo: dict) -> dict:
    return {**TINY, "options": {**TINY["options"], "train": {**TINY["options"]["train"], "ppo": ppo}}}


def test_an_rl_zoo_dict_is_accepted_stored_and_sent_to_the_engine_in_sb3s_names(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers=alice, json=with_ppo(RL_ZOO))
    assert r.status_code == 201, r.text
    stored = r.json()["options"]["train"]["ppo"]
    assert stored["learning_rate"] == "lin_3e-4" and stored["normalize"] is True
    assert stored["policy_kwargs"] == {  # RL Zoo's text, read as literals and kept as a mapping
        "net_arch": {"pi": [64], "vf": [64]},
        "log_std_init": -2.0,
        "activation_fn": "relu",
        "ortho_init": False,
    }
    with session_scope(api.sf) as s:
        task = s.get(Task, r.json()["id"])
        ppo = options_of(task).train.engine_options()["ppo"]  # what every training of the run is given
    assert ppo["learning_rate"] == "lin_3e-4" and ppo["activation_fn"] == "relu" and ppo["ortho_init"] is False
    assert ppo["net_arch"] == {"pi": (64,), "vf": (64,)} and "policy_kwargs" not in ppo
    assert (ppo["normalize_obs"], ppo["normalize_reward"]) == (True, True) and "normalize" not in ppo


@pytest.mark.parametrize(
    ("ppo", "field", "words"),
    [
        ({"batch_size": 300}, "batch_size", ["must divide the rollout of n_envs × n_steps = 64 × 64 = 4,096"]),
        (
            {**RL_ZOO, "batch_size": 100},
            "batch_size",
            ["4 × 256 = 1,024, else SB3 trains on a truncated", "try 256, 512, 1024"],
        ),
        ({"learning_rate": "3e-4"}, "learning_rate", ["'lin_<number>'"]),
        ({"learning_rate": "lin_1.5"}, "learning_rate", ["at most 1"]),
        ({"clip_range": "cos_0.2"}, "clip_range", ["'lin_<number>'"]),
        ({"policy_kwargs": "__import__('os').system('touch /tmp/pwned')"}, "policy_kwargs", ["is not a literal"]),
        ({"policy_kwargs": {"activation_fn": "Sigmoid"}}, "policy_kwargs.activation_fn", ["tanh, relu"]),
        ({"policy_kwargs": {"features_extractor_class": "x"}}, "policy_kwargs.features_extractor_class", ["Extra"]),
        ({"n_timesteps": 1000000}, "", ["n_timesteps is the task's"]),
        ({"lr": 0.001}, "lr", ["Extra inputs are not permitted"]),
    ],
)
def test_hyperparameters_outside_the_schema_get_a_422_naming_the_key(
    api: Api, ppo: dict, field: str, words: list[str]
) -> None:
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers=alice, json=with_ppo(ppo))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "options.train.ppo" + (f".{field}" if field else "")
    for word in words:
        assert word in error["message"], error["message"]
    assert count_tasks(api) == 0 and api.dispatcher.calls == []
