"""Issue 22 in the service: a child's trainings start from its parent's policy, and the critic screens each reward on
the run's recorded episodes before it trains. A screened-out candidate is not trained, its record says why in words,
the usage counts the training saved, and the designer's next prompt carries it; run.json has both. The LLM is the
loopback fake server; the sandbox is real (the screen runs there); the recorded episodes are open-loop gaits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.artifacts.keys import join
from app.artifacts.stores import store_of
from app.db import session_scope
from app.db.models import Candidate, Iteration, Run, Training
from app.search.machine.designing import design
from app.search.machine.factory import designer_factory
from app.search.machine.iterations import record_training
from app.search.records.run_json import run_dict
from app.search.records.runs import set_status
from app.search.service import create_task
from tests.app.search.harness import MODEL, Search, task_spec
from tests.support.db import make_settings
from tests.support.dispatch import RecordingDispatcher
from tests.support.fake_openai import FakeOpenAI
from tests.support.tasks import TRAIN, tiny_spec
from tests.support.trajectories import PAYS_FOR_FALLING, SOUND, record_gaits
from workers.engine.screen import REFUSED
from workers.engine.trajectories import TRAJECTORIES_FILE


def answer(code: str) -> str:
    return f"A reward for the task.\n\n```python\n{code}```\n"


def first_round(sf, tmp_path: Path, settings, **options) -> tuple[int, int, int]:
    """A running run whose first iteration is done: one trained candidate whose training stored the recorded gaits
    (four runners, three flippers) and its policy's files. Returns (run id, candidate id, training id)."""
    with session_scope(sf) as s:
        _, run = create_task(
            s,
            spec=task_spec(iterations=3, samples=2, options={"max_repairs": 1, **options}),
            owner_id=None,
            settings=settings,
            dispatcher=RecordingDispatcher(),
        )
        set_status(run, "running")
        it = Iteration(run=run, index=0, status="done", context={})
        s.add(it)
        s.flush()
        c = Candidate(run_id=run.id, iteration_id=it.id, index=0, origin="llm", code=SOUND, status="trained")
        s.add(c)
        s.flush()
        recorded = record_gaits(tmp_path / TRAJECTORIES_FILE)
        key = f"run-{run.id}/candidate-{c.id}/training-1/attempt-1"
        store_of(settings).put_file(join(key, TRAJECTORIES_FILE), recorded)
        t = Training(
            candidate_id=c.id,
            run_id=run.id,
            purpose="full",
            timesteps=2048,
            seed=0,
            status="ok",
            artifacts_key=key,
            stored_files={TRAJECTORIES_FILE: recorded.stat().st_size, "policy.zip": 1, "vecnormalize.pkl": 1},
            result={"fitness": {"mean": 5.0, "std": 0.0, "per_episode": [5.0]}, "timesteps": 2048},
        )
        s.add(t)
        s.flush()
        record_training(t, run.task)
        c.fitness = 5.0
        run.best_candidate_id = c.id
        return run.id, c.id, t.id


@pytest.mark.slow
def test_a_reward_that_pays_for_falling_is_screened_out_and_the_next_prompt_says_why(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        settings = make_settings(tmp_path, openai_base_url=server.base_url, openai_api_key="sk-test", llm_model=MODEL)
        run_id, _, parent_training = first_round(sqlite_sf, tmp_path, settings)
        # two samples: a reward that pays for flipping over and a sound one; the first one's repair pays for it again
        server.script([answer(PAYS_FOR_FALLING), answer(SOUND), answer(PAYS_FOR_FALLING)])
        dispatcher = RecordingDispatcher()
        design(sqlite_sf, run_id, dispatcher, settings, designer_factory(sqlite_sf, settings))
        repair_prompt = server.requests[-1]["messages"][-1]["content"]
    assert "this reward prefers the episode that spent most of its 200 steps on its back" in repair_prompt
    with session_scope(sqlite_sf) as s:
        run = s.get(Run, run_id)
        bad, good = sorted(run.iterations[1].candidates, key=lambda c: c.index)
        assert bad.status == "rejected" and bad.trainings == [], "a screened-out candidate is not trained"
        assert bad.error.startswith(REFUSED) and "to the one that ran" in bad.error
        assert bad.screen["verdict"] == "ranks_against_fitness" and bad.screen["rho"] < -0.5
        assert [n["stage"] for n in bad.critic].count("screen") == 2, "refused, repaired, refused again"
        assert good.status == "queued" and good.screen["verdict"] == "pass"
        (child,) = good.trainings
        assert child.warm_start_from_id == parent_training and child.continue_from_parent is True
        assert run.usage["trainings_saved_by_screen"] == 1 and run.usage["screened"] == 2
        doc = run_dict(s, run, model=MODEL)
        shown = {c["id"]: c for c in doc["iterations"][1]["candidates"]}
        assert shown[bad.id]["screen"]["text"] == bad.screen["text"]
        assert shown[good.id]["trainings"][0]["warm_start_from_training"] == parent_training
        assert doc["iterations"][0]["candidates"][0]["lineage"] == {
            "steps_own": 2048,
            "steps_ancestors": 0,
            "steps_total": 2048,
            "started_from": "scratch",
        }
        run.iterations[1].status = "done"
    with FakeOpenAI() as server:  # the next round's prompt carries the screen's words
        settings = make_settings(tmp_path, openai_base_url=server.base_url, openai_api_key="sk-test", llm_model=MODEL)
        server.script([answer(SOUND), answer(SOUND)])
        design(sqlite_sf, run_id, RecordingDispatcher(), settings, designer_factory(sqlite_sf, settings))
        prompt = server.requests[0]["messages"][-1]["content"]
    assert "## Rewards the trajectory screen refused (they were not trained)" in prompt
    assert "- candidate 2.1: ranks the recorded episodes against the fitness" in prompt
    assert "this reward prefers the episode that spent most of its 200 steps on its back" in prompt


@pytest.mark.slow
def test_with_the_options_off_nothing_is_screened_and_children_start_from_scratch(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        settings = make_settings(tmp_path, openai_base_url=server.base_url, openai_api_key="sk-test", llm_model=MODEL)
        run_id, _, _ = first_round(sqlite_sf, tmp_path, settings, trajectory_screen=False, continue_from_parent=False)
        server.script([answer(PAYS_FOR_FALLING), answer(SOUND)])
        design(sqlite_sf, run_id, RecordingDispatcher(), settings, designer_factory(sqlite_sf, settings))
    with session_scope(sqlite_sf) as s:
        run = s.get(Run, run_id)
        candidates = run.iterations[1].candidates
        assert all(c.status == "queued" and c.screen is None for c in candidates)
        trainings = s.scalars(select(Training).where(Training.candidate_id.in_([c.id for c in candidates]))).all()
        assert all(t.warm_start_from_id is None and t.continue_from_parent is False for t in trainings)
        assert run.usage.get("trainings_saved_by_screen") == 0


@pytest.mark.slow
def test_a_whole_search_continues_each_child_from_its_parents_policy(sqlite_sf, tmp_path) -> None:
    """Two rounds of the offline designer on tiny budgets: the second round's training downloads its parent's policy
    and starts from it; the candidate's lineage counts its own steps and its parent's."""
    search = Search(sqlite_sf, tmp_path)
    run_id, status = search.run(tiny_spec(iterations=2, samples=1, options={"train": {**TRAIN, "eval_episodes": 2}}))
    assert status == "succeeded", search.doc(run_id)["error"]
    first, second = search.trainings(run_id)
    assert first.warm_start_from_id is None and "warm_start" not in first.result
    assert second.warm_start_from_id == first.id and second.continue_from_parent is True
    assert second.result["warm_start"]["ancestor_timesteps"] == first.result["timesteps"]
    assert second.result["timesteps"] == 2048 and second.result.get("resumed_from_timesteps") == 0
    assert {"trajectories.npz", "policy.zip"} <= set(second.stored_files or {})
    parent, child = search.candidates(run_id)
    assert parent["lineage"]["started_from"] == "scratch"
    assert child["lineage"] == {
        "steps_own": 2048,
        "steps_ancestors": 2048,
        "steps_total": 4096,
        "started_from": "its parent's policy",
    }
    assert child["screen"]["verdict"] == "inconclusive", "two recorded episodes are too few to screen on"
