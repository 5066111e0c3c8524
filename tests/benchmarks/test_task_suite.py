"""The task suite's plumbing end to end with the LLM designer behind the scripted loopback server."""

from __future__ import annotations

import json

import pytest

from benchmarks import task_suite
from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import load_fixture


@pytest.mark.slow
def test_the_suite_runs_the_llm_designer_when_an_endpoint_is_configured(tmp_path) -> None:
    with FakeOpenAI(default=load_fixture("cheetah_forward")) as server:
        llm = {"openai_base_url": server.base_url, "openai_api_key": "sk-test", "llm_model": "fake-model"}
        argv = [
            "--quick",
            "--tasks",
            "cheetah_backward",
            "--samples",
            "1",
            "--fresh-seeds",
            "1",
            "--out",
            str(tmp_path),
        ]
        doc = task_suite.main(argv, settings_overrides=llm)
        design = [r for r in server.requests if [m["role"] for m in r["messages"]] == ["system", "user"]]
    assert design and "run backwards" in design[0]["messages"][1]["content"]
    (row,) = doc["rows"]
    assert row["designer"] == "LLM designer (fake-model)" and row["status"] == "succeeded"
    assert "def compute_reward" in row["best_code"] and "offline designer" not in row["best_code"]
    assert row["fresh_seeds"] == [1000]
    for figure in ("best", "reference", "fitness_as_reward"):
        assert len(row[figure]["per_seed"]) == 1 and row[figure]["mean"] is not None
    assert row["beats_better_baseline"] == (row["best"]["mean"] >= row["better_baseline"])
    assert row["search_steps"] == 2048 <= row["steps_used"]  # its one candidate; the baselines and yardstick on top
    saved = json.loads((tmp_path / "task_suite.json").read_text())
    assert saved["summary"]["search_steps"] == 2048 and saved["summary"]["lineage_policies"] == 0
    assert saved["summary"]["tasks"] == 1 and "| cheetah_backward | HalfCheetah-v5 |" in saved["table"]
    assert (tmp_path / "task_suite.png").stat().st_size > 0


@pytest.mark.slow
def test_the_quadruped_task_adds_its_robot_as_a_user_would_and_runs(tmp_path) -> None:
    # no fresh seeds: the search and its two baselines only (the figures on fresh seeds are the test above's)
    argv = ["--quick", "--tasks", "quadruped_forward", "--designer", "offline", "--samples", "1", "--fresh-seeds", "0"]
    doc = task_suite.main([*argv, "--out", str(tmp_path)])
    (row,) = doc["rows"]
    assert row["task"]["env"] == "test_quadruped" and row["status"] == "succeeded", row["error"]
    assert row["best_code"].startswith("# Written by the offline designer (no LLM)")
    assert len(row["candidate_fitness"]) == 1 and row["fitness_as_reward"]["available"]
