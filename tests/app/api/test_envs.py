"""GET /envs and GET /envs/{env}: the registry, with the state description the designer sees."""

from __future__ import annotations

import envs
from tests.app.api.harness import API, Api


def test_list_envs_names_every_registered_env(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.get(f"{API}/envs", headers=alice)
    assert r.status_code == 200
    body = r.json()
    assert [e["name"] for e in body] == envs.names()
    assert len(body) == 11 and body[0]["name"] == "HalfCheetah-v5"
    cheetah = body[0]
    assert cheetah["planar"] is True and "forward_distance" in cheetah["reference_fitness"]
    assert cheetah["title"] and cheetah["summary"]


def test_env_detail_carries_the_state_description_and_the_reference_reward(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.get(f"{API}/envs/HalfCheetah-v5", headers=alice)
    assert r.status_code == 200
    env = r.json()
    names = [f["name"] for f in env["fields"]]
    for required in ("x_position", "x_velocity", "pitch", "upright", "joint_positions", "is_healthy", "dt", "step"):
        assert required in names
    x_velocity = next(f for f in env["fields"] if f["name"] == "x_velocity")
    assert x_velocity["shape"] == "(N,)" and x_velocity["unit"] == "m/s"
    assert "x_velocity" in env["description"]
    assert "def compute_reward(state, action)" in env["reference_reward"]
    assert {m["name"] for m in env["fitness_metrics"]} >= {"forward_distance", "backward_distance", "flips"}


def test_unknown_env_is_404_and_lists_the_known_ones(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.get(f"{API}/envs/Cheetah-v1", headers=alice)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "not_found"
    assert "Cheetah-v1" in error["message"] and "HalfCheetah-v5" in error["message"]
