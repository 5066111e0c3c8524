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
    assert doc["settings"]["warm_start_budget"] == 0.5, "without --warm-start-budget: the task option's default"


def test_a_screened_out_candidate_would_have_won_only_by_beating_every_candidate_the_run_trained() -> None:
    row = {"candidate_fitness": [1.48, 1.25], "screened_out_trained": []}
    assert task_suite.would_have_won(row, {"fitness": 1.70, "iteration_best": None})
    assert not task_suite.would_have_won(row, {"fitness": 1.30, "iteration_best": None})  # its iteration had none
    assert not task_suite.would_have_won(row, {"fitness": None, "iteration_best": 1.0})  # its training failed
    assert task_suite.would_have_won({"candidate_fitness": []}, {"fitness": 0.1})  # the run trained nothing


def test_the_summary_counts_the_search_steps_and_the_lineage_policies_apart() -> None:
    base = {
        "status": "succeeded",
        "success": False,
        "beats_better_baseline": False,
        "identical_without_diagnostic": False,
    }
    rows = [
        {**base, "task": {"name": "a"}, "steps_used": 1_500, "search_steps": 400, "candidate_fitness": [2.0],
         "lineage": {"policy_mean": 3.0, "reference_mean": 1.0},
         "screened_out_trained": [{"fitness": 2.5}, {"fitness": 1.0}], "trainings_saved_by_screen": 2},
        {**base, "task": {"name": "b"}, "steps_used": 1_200, "search_steps": 400, "candidate_fitness": [5.0],
         "lineage": {"note": "from scratch"}, "screened_out_trained": []},
    ]  # fmt: skip
    s = task_suite.summarise(rows)
    assert (s["steps_used"], s["search_steps"], s["trainings_saved_by_screen"]) == (2_700, 800, 2)
    assert (s["lineage_policies"], s["lineage_beats_reference"]) == (1, 1)
    assert (s["screened_out_trained"], s["screened_out_would_have_won"]) == (2, 1)


def test_the_best_meets_the_better_baseline_within_the_seeds_noise() -> None:
    def row(best: list, reference: list, sparse: list) -> dict:
        def series(xs: list) -> dict:
            return {"mean": sum(xs) / len(xs) if xs else None, "per_seed": xs}

        return {"best": series(best), "reference": series(reference), "fitness_as_reward": series(sparse)}

    # judged against the fitness as reward, the better of the two baselines
    assert task_suite.against_better_baseline(row([10.0, 10.2, 9.9], [1.0, 1.1, 0.9], [5.0, 5.1, 4.9])) == "above"
    assert task_suite.against_better_baseline(row([5.1, 4.8, 5.0], [1.0, 1.1, 0.9], [5.0, 5.3, 4.9])) == "within noise"
    assert task_suite.against_better_baseline(row([1.0, 1.1, 0.9], [-1.0, -1.1, -0.9], [5.0, 5.1, 4.9])) == "below"
    assert task_suite.against_better_baseline(row([2.0], [1.0], [])) == "cannot tell"  # one seed each: no spread
    assert task_suite.against_better_baseline(row([], [1.0, 2.0], [])) == "cannot tell"  # the best never trained
    s = task_suite.summarise([{**row([10.0, 10.2, 9.9], [1.0, 1.1, 0.9], []), "status": "succeeded",
                               "beats_better_baseline": True, "success": True, "identical_without_diagnostic": False}])  # fmt: skip
    assert s["against_better_baseline_with_noise"] == {"above": 1}


def test_combine_lets_a_later_file_replace_a_task_and_keeps_the_other_rows_notes(tmp_path) -> None:
    stored = task_suite.RESULTS / "task_suite_side_by_side.json"
    doc = json.loads(stored.read_text())
    rerun = {**doc, "rows": [dict(r) for r in doc["rows"] if r["task"]["name"] == "hopper_hop_high"]}
    rerun["rows"][0].pop("run_note")
    rerun["rows"][0]["best"] = {**rerun["rows"][0]["best"], "mean": 99.0}
    (tmp_path / "rerun.json").write_text(json.dumps(rerun))
    out = task_suite.combine([stored, tmp_path / "rerun.json"], tmp_path, ["", "the new screen"], "combined")
    rows = {r["task"]["name"]: r for r in out["rows"]}
    assert len(rows) == len(doc["rows"]) and rows["hopper_hop_high"]["best"]["mean"] == 99.0
    assert rows["hopper_hop_high"]["run_note"] == "the new screen"
    before = {r["task"]["name"]: r["run_note"] for r in doc["rows"]}
    assert all(rows[n]["run_note"] == before[n] for n in rows if n != "hopper_hop_high")
    assert out["combined_from"][: len(doc["combined_from"])] == doc["combined_from"]  # where the stored rows came from
    assert (tmp_path / "combined.json").is_file()
