"""`rewardsmith run` as a user runs it: a subprocess configured by environment variables, the LLM on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.llm.extraction import extract_program
from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import load_fixture

TINY = [
    "--env",
    "HalfCheetah-v5",
    "--task",
    "make the cheetah run forward",
    "--timesteps",
    "2048",
    "--final-seeds",
    "0",
    "--no-baselines",
    "--eval-episodes",
    "1",
    "--episode-steps",
    "100",
    "--parallel",
    "2",
]


def rewardsmith(
    args: list[str], tmp_path: Path, server: FakeOpenAI | None, *, command: str = "run", **env: str
) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    clean |= {
        "REWARDSMITH_DATA_DIR": str(tmp_path / "data"),
        "REWARDSMITH_LLM_BACKOFF_SECONDS": "0.05",
        "COLUMNS": "200",
    }
    if server is not None:
        clean |= {
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test",
            "REWARDSMITH_LLM_MODEL": "fake-model",
        }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", command, *args],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_two_by_two_llm_run_writes_run_json_and_the_best_reward(fake_llm, tmp_path) -> None:
    fake_llm.script(
        [
            load_fixture(n)
            for n in ("cheetah_forward", "syntax_error", "cheetah_helpers", "cheetah_forward_v2", "cheetah_flip_hack")
        ]
    )
    out = tmp_path / "out"
    proc = rewardsmith(
        [*TINY, "--designer", "llm", "--iterations", "2", "--samples", "2", "--out", str(out)], tmp_path, fake_llm
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fake_llm.remaining == 0 and len(fake_llm.requests) == 3
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "succeeded" and doc["error"] is None
    assert doc["designer"] == "LLM designer (fake-model)"
    assert doc["task"]["iterations"] == 2 and doc["task"]["samples"] == 2 and doc["task"]["timesteps"] == 2048
    rounds = [[(c["origin"], c["status"]) for c in it["candidates"]] for it in doc["iterations"]]
    assert rounds == [[("llm", "trained"), ("repair", "trained")], [("llm", "trained"), ("llm", "trained")]]
    best = doc["best_candidate"]
    assert best["fitness"] == max(c["fitness"] for it in doc["iterations"] for c in it["candidates"])
    assert (out / "best_reward.py").read_text() == best["code"]
    assert best["code"] in {
        extract_program(load_fixture(n)).source
        for n in ("cheetah_forward", "cheetah_helpers", "cheetah_forward_v2", "cheetah_flip_hack")
    }
    assert doc["usage"]["requests"] == 3 and doc["usage"]["total_tokens"] > 0
    assert "designer: LLM designer (fake-model)" in proc.stdout
    assert f"best candidate {best['id']}: fitness" in proc.stdout
    assert "tokens: " in proc.stdout and "(3 requests, 0 from cache)" in proc.stdout
    assert f"wrote {out / 'run.json'} and {out / 'best_reward.py'}" in proc.stdout
    # the run is in the data directory's database too
    assert (tmp_path / "data" / "rewardsmith.sqlite3").is_file()


def test_an_unreachable_llm_fails_the_run_with_what_to_do(fake_llm, tmp_path) -> None:
    out = tmp_path / "out"
    proc = rewardsmith(
        [*TINY, "--designer", "llm", "--iterations", "1", "--samples", "1", "--out", str(out)],
        tmp_path,
        fake_llm,
        REWARDSMITH_LLM_MAX_RETRIES="0",
    )
    assert proc.returncode == 1
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "failed" and doc["best_candidate"] is None
    assert "the designer could not get an answer from the LLM" in doc["error"]
    assert "HTTP 500" in doc["error"] and "designer 'offline'" in doc["error"]
    assert not (out / "best_reward.py").exists()
    assert "failed" in proc.stdout and "the run did not succeed" in proc.stderr


def test_asking_for_the_llm_designer_without_an_llm_says_what_to_set(tmp_path) -> None:
    proc = rewardsmith([*TINY, "--designer", "llm", "--out", str(tmp_path / "out")], tmp_path, None)
    assert proc.returncode == 2
    assert "designer 'llm' needs an LLM: set REWARDSMITH_LLM_MODEL and OPENAI_BASE_URL" in proc.stderr
    assert not (tmp_path / "out").exists()


BACKWARDS = [
    *TINY[:2],
    "--task",
    "make the cheetah run backwards",
    *TINY[4:],
    "--designer",
    "offline",
    "--iterations",
    "1",
    "--samples",
    "1",
    "--fitness",
    "propose",
]


@pytest.mark.slow
def test_a_proposed_fitness_is_printed_and_the_run_waits_until_approved(tmp_path) -> None:
    out = tmp_path / "out"
    proc = rewardsmith([*BACKWARDS, "--out", str(out)], tmp_path, None)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "built-in metric 'backward_distance'" in proc.stdout and "def compute_fitness(traj):" in proc.stdout
    assert "on 5 random-policy episodes: " in proc.stdout and "so it can tell them apart" in proc.stdout
    assert "run 1 waits for your approval of its fitness. Approve it with `rewardsmith approve 1" in proc.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "waiting_fitness" and doc["iterations"] == []
    [proposal] = doc["fitness_proposals"]
    assert proposal["status"] == "proposed" and len(proposal["measurement"]["values"]) == 5

    proc = rewardsmith(["1", "--out", str(out), "--parallel", "2"], tmp_path, None, command="approve")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fitness approved (command line); the search starts" in proc.stdout
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "succeeded" and doc["task"]["fitness"] == "proposed"
    [proposal] = doc["fitness_proposals"]
    assert (proposal["status"], proposal["decided_by"]) == ("approved", "command line")
    again = rewardsmith(["1", "--out", str(out)], tmp_path, None, command="approve")
    assert again.returncode == 2 and "does not wait for a fitness approval (it is 'succeeded')" in again.stderr


@pytest.mark.slow
def test_approve_accepts_the_proposed_fitness_without_asking(tmp_path) -> None:
    out = tmp_path / "out"
    proc = rewardsmith([*BACKWARDS, "--approve", "--out", str(out)], tmp_path, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "succeeded" and doc["fitness_proposals"][0]["status"] == "approved"
    assert "backward" in doc["task"]["fitness_source"] and doc["best_candidate"]["fitness"] is not None


@pytest.mark.slow
def test_a_finished_run_is_continued_from_the_command_line_with_feedback(tmp_path) -> None:
    first = rewardsmith(
        [*TINY, "--designer", "offline", "--iterations", "1", "--samples", "1", "--out", str(tmp_path / "out")],
        tmp_path,
        None,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("run 1 ━") == 1  # one progress bar, not a line per progress report
    out = tmp_path / "more"
    proc = rewardsmith(
        ["1", "--iterations", "1", "--feedback", "keep the torso level", "--out", str(out)],
        tmp_path,
        None,
        command="continue",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run 1: continued for 1 more iteration(s)" in proc.stdout
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "succeeded" and [it["iteration"] for it in doc["iterations"]] == [1, 2]
    assert [f["text"] for f in doc["iterations"][1]["context"]["feedback"]] == ["keep the torso level"]
