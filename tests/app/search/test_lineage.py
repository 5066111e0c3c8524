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
from app.search.design.diagnostics import run_findings
from app.search.machine.designing import design
from app.search.machine.factory import designer_factory
from app.search.machine.finish import finalize, maybe_finish, needs_warm_start
from app.search.machine.iterations import record_training
from app.search.records.run_json import run_dict
from app.search.records.runs import set_status
from app.search.service import create_task
from tests.app.search.harness import MODEL, Search, running_run, task_spec
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
        assert bad.screen["parent_rho"] > 0.8, "ranked beside its parent, the sound runner reward, which it broke"
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
    and starts from it; the candidate's lineage counts its own steps and its parent's (warm_start_budget 1: the child
    trains as long as its parent)."""
    search = Search(sqlite_sf, tmp_path)
    options = {"train": {**TRAIN, "eval_episodes": 2}, "warm_start_budget": 1.0}
    run_id, status = search.run(tiny_spec(iterations=2, samples=1, options=options))
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


@pytest.mark.slow
def test_a_child_with_half_the_budget_adds_half_the_steps_to_its_lineage(sqlite_sf, tmp_path) -> None:
    """The default warm_start_budget, 0.5 (ROSKA's "less data"): the warm-started child trains 1,024 steps on top of
    its parent's 2,048; the first iteration, from scratch, trains them all."""
    search = Search(sqlite_sf, tmp_path)
    train = {**TRAIN, "eval_episodes": 1, "ppo": {"n_steps": 128}}  # 8 envs x 128: a rollout is 1,024 steps
    spec = tiny_spec(iterations=2, samples=1, options={"train": train})
    run_id, status = search.run(spec)
    assert status == "succeeded", search.doc(run_id)["error"]
    first, second = search.trainings(run_id)
    assert (first.timesteps, second.timesteps) == (2048, 1024) and second.warm_start_from_id == first.id
    assert second.result["timesteps"] == 1024 and "warm_start" in second.result
    child = search.candidates(run_id)[1]
    assert child["lineage"]["steps_own"] == 1024 and child["lineage"]["steps_total"] == 3072
    assert search.doc(run_id)["task"]["options"]["warm_start_budget"] == 0.5


def _stored_training(s, c: Candidate, purpose: str, fitness: float) -> Training:
    """A finished 2,048-step training of ``c`` that stored its files (no PPO: the row only)."""
    t = Training(
        candidate_id=c.id,
        run_id=c.run_id,
        purpose=purpose,
        timesteps=2048,
        status="ok",
        artifacts_key=f"run-{c.run_id}/candidate-{c.id}/training-1/attempt-1",
        result={"timesteps": 2048, "fitness": {"mean": fitness, "std": 0.0}},
    )
    s.add(t)
    s.flush()
    return t


def _finished_search(sf, tmp_path, *, ancestors: int) -> tuple[int, int, int]:
    """A run at its last iteration's end whose best candidate trained 2,048 steps of its own after ``ancestors`` of
    its parent's (no PPO: the rows only). Returns (run id, best candidate id, its training id)."""
    with session_scope(sf) as s:
        spec = tiny_spec(options={"final_seeds": 2, "baselines": True})
        run, it = running_run(s, spec, make_settings(tmp_path), "done")
        best = Candidate(run_id=run.id, iteration_id=it.id, index=0, origin="offline", code=SOUND, status="trained")
        best.fitness, best.steps_own, best.steps_ancestors = 9.0, 2048, ancestors
        s.add(best)
        s.flush()
        t = _stored_training(s, best, "full", 9.0)
        reference = Candidate(run_id=run.id, index=0, origin="baseline-reference", code="x", status="trained")
        reference.fitness = 12.0
        s.add(reference)
        s.flush()
        _stored_training(s, reference, "baseline", 12.0)
        run.best_candidate_id = best.id
        return run.id, best.id, t.id


def _measured(s, training: Training, fitness: float) -> None:
    training.status, training.result = "ok", {"fitness": {"mean": fitness, "std": 0.0}, "timesteps": 2048}


FIGURES = {("best", "lineage"): 30.0, ("best", "final"): 10.0, ("reference", "lineage"): 14.0}
"""Fitness each evaluation measures: the policy far ahead of the same reward from scratch, the reference at the
lineage's steps (14) a little above the reference at one training's (12)."""


def _finalized(sf, tmp_path, *, continuation_fails: bool = False) -> tuple[int, int, int, int]:
    """A run finalized and every training it made measured (``FIGURES``; 12 for the reference's finals); returns
    (run id, best id, the best's policy training id, the reference's baseline training id)."""
    run_id, best_id, policy_id = _finished_search(sf, tmp_path, ancestors=4096)
    with session_scope(sf) as s:
        finalize(s, s.get(Run, run_id), RecordingDispatcher(), sf)
    with session_scope(sf) as s:
        baseline_id = s.scalar(select(Training.id).where(Training.run_id == run_id, Training.purpose == "baseline"))
        made = s.scalars(
            select(Training).where(Training.run_id == run_id, Training.id.not_in((policy_id, baseline_id)))
        )
        for t in made:
            who = "best" if t.candidate_id == best_id else "reference"
            _measured(s, t, FIGURES.get((who, t.purpose), 12.0))
            if continuation_fails and who == "reference" and t.purpose == "lineage":
                t.status, t.result = "failed", {}
    maybe_finish(sf, run_id)
    return run_id, best_id, policy_id, baseline_id


def test_the_run_delivers_the_reward_from_scratch_and_the_lineage_policy_on_the_same_fresh_seeds(
    sqlite_sf, tmp_path
) -> None:
    run_id, best_id, policy_id, baseline_id = _finalized(sqlite_sf, tmp_path)
    with session_scope(sqlite_sf) as s:
        made = s.scalars(
            select(Training).where(Training.run_id == run_id, Training.id.not_in((policy_id, baseline_id)))
        )
        by: dict[tuple[bool, str], list[Training]] = {}
        for t in made:
            by.setdefault((t.candidate_id == best_id, t.purpose), []).append(t)
        lineage, finals, continued = by[(True, "lineage")], by[(True, "final")], by[(False, "lineage")]
        assert sorted(t.seed for t in lineage) == sorted(t.seed for t in finals) == [1000, 1001]
        assert all(t.resume_from_id == policy_id and t.timesteps == 2048 for t in lineage), "measured, not trained"
        assert all(t.resume_from_id is None and t.warm_start_from_id is None for t in finals), "from scratch"
        # the reference's baseline policy is trained on to the lineage's 6,144 steps on the same fresh seeds
        assert sorted(t.seed for t in continued) == [1000, 1001]
        assert all(t.resume_from_id == baseline_id and t.timesteps == 2048 + 4096 for t in continued)
        run = s.get(Run, run_id)
        assert run.status == "succeeded"
        lineage_doc = run.final["lineage"]
        assert lineage_doc["policy_mean"] == 30.0 and lineage_doc["scratch_mean"] == 10.0
        assert lineage_doc["reference_mean"] == 14.0 and lineage_doc["reference_steps"] == 6144
        assert lineage_doc["steps_total"] == 2048 + 4096 and lineage_doc["verdict"] == "above"
        assert "retrained from scratch for 2,048 steps" in lineage_doc["note"]
        assert "reference reward trained for the lineage's 6,144 steps" in lineage_doc["note"]
        (finding,) = [d for d in run_findings(run) if d["code"] == "needs_warm_start"]
        assert "a curriculum" in finding["message"] and finding["numbers"]["policy_mean"] == 30.0
        assert run_dict(s, run)["final"]["lineage"] == lineage_doc


def test_without_the_references_continuation_the_lineage_is_compared_at_one_trainings_steps_and_says_so(
    sqlite_sf, tmp_path
) -> None:
    run_id, *_ = _finalized(sqlite_sf, tmp_path, continuation_fails=True)
    with session_scope(sqlite_sf) as s:
        lineage_doc = s.get(Run, run_id).final["lineage"]
    assert lineage_doc["reference_mean"] == 12.0 and lineage_doc["reference_steps"] == 2048
    assert "verdict" not in lineage_doc and "not for the lineage's 6,144" in lineage_doc["note"]


def test_a_best_candidate_trained_from_scratch_gets_no_lineage_evaluation(sqlite_sf, tmp_path) -> None:
    run_id, _, _ = _finished_search(sqlite_sf, tmp_path, ancestors=0)
    with session_scope(sqlite_sf) as s:
        finalize(s, s.get(Run, run_id), RecordingDispatcher(), sqlite_sf)
        made = s.scalars(select(Training).where(Training.run_id == run_id)).all()
        assert [t.purpose for t in made if t.purpose == "lineage"] == []


def test_no_warm_start_finding_when_the_lineage_policy_is_within_the_margin() -> None:
    assert needs_warm_start({"policy_mean": 11.0, "scratch_mean": 10.0}) is None
    assert needs_warm_start({"policy_mean": 16.0, "scratch_mean": 10.0}) is not None
    assert needs_warm_start({"note": "not measured"}) is None
