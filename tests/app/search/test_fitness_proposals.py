"""Fitness proposed by an LLM: the real `openai` client against the loopback server replaying scripted answers, the
real sandbox (static check, dry run, measurement on random-policy episodes), a real SQLite database, the in-process
dispatcher. A broken proposal is caught with the checker's message, sent back once, and can be proposed again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import session_scope
from app.db.models import FitnessProposal, Run, utcnow
from app.errors import Conflict
from app.search.machine import proposing, steps
from app.search.machine.factory import proposer_factory
from app.search.records.proposals import proposal_dict, proposals_of
from app.search.rules.states import Origin
from app.search.service import create_task, decide, resume_run
from tests.app.search.harness import Search, task_spec
from tests.support.dispatch import RecordingDispatcher as Recorder
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fixtures import load_fixture

BACKWARDS = task_spec(fitness="propose", description="make the cheetah run backwards")


def records(search: Search, run_id: int) -> list[dict]:
    with session_scope(search.sf) as s:
        return [proposal_dict(p) for p in proposals_of(s, run_id)]


def decide_as_tester(search: Search, run_id: int, dispatcher, **decision) -> None:
    with session_scope(search.sf) as s:
        decide(
            s,
            run=s.get(Run, run_id),
            user_id=None,
            who="tester",
            settings=search.settings(),
            dispatcher=dispatcher,
            **decision,
        )


@pytest.mark.slow
def test_a_broken_llm_proposal_is_caught_and_sent_back_with_the_checkers_message(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("fitness_wrong_field"), load_fixture("fitness_backward")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(BACKWARDS)
    assert status == "waiting_fitness"
    broken, fixed = records(search, run_id)
    assert (broken["status"], broken["origin"]) == ("broken", "llm")
    assert "the state has no field 'backward_velocity'" in broken["error"] and "line 4" in broken["error"]
    assert broken["answer"] == load_fixture("fitness_wrong_field") and broken["measurement"] == {}
    assert (fixed["status"], fixed["origin"], fixed["author"]) == ("proposed", "repair", "LLM designer (fake-model)")
    assert fixed["meaning"].startswith("This fitness measures how many metres the cheetah's torso travels backwards")
    assert fixed["measurement"]["varies"] and len(fixed["measurement"]["values"]) == 5

    first, repair = server.requests
    prompt = first["messages"][-1]["content"]
    assert "## Task, in the person's words\nmake the cheetah run backwards" in prompt
    assert "backward_distance" in prompt and "x_velocity" in prompt  # the metrics and the env's state fields
    assert "def compute_fitness(traj)" in first["messages"][0]["content"]
    assert repair["messages"][:2] == first["messages"]
    assert repair["messages"][2] == {"role": "assistant", "content": load_fixture("fitness_wrong_field")}
    assert "no field 'backward_velocity'" in repair["messages"][3]["content"]
    assert [e["purpose"] for e in search.exchanges(run_id)] == ["fitness", "fitness"]


@pytest.mark.slow
def test_proposals_that_stay_broken_wait_for_a_person_who_asks_again_with_a_note(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("fitness_per_step"), load_fixture("fitness_per_step")])
        search = Search(sqlite_sf, tmp_path, server)
        local = search.start(BACKWARDS)
        run_id, dispatcher = local.run_id, local.dispatcher
        assert local.status == "waiting_fitness"
        assert [(p["status"], p["origin"]) for p in records(search, run_id)] == [
            ("broken", "llm"),
            ("broken", "repair"),
        ]
        assert "one number per episode" in records(search, run_id)[-1]["error"]
        with pytest.raises(Conflict, match="did not pass the checks, so it cannot be approved"):
            decide_as_tester(search, run_id, dispatcher, approve_it=True)

        server.script([load_fixture("fitness_jump")])
        decide_as_tester(search, run_id, dispatcher, again=True, note="I care how high it jumps, not how far it goes.")
        assert search.settle(local) == "waiting_fitness"
        *_, third = records(search, run_id)
        assert (third["status"], third["origin"]) == ("proposed", "llm")
        assert "np.max(traj.z_position)" in third["source"]
        asked = server.requests[-1]["messages"]
        assert [m["role"] for m in asked] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert "I care how high it jumps" in asked[-1]["content"] and "asked for another" in asked[-1]["content"]

        server.script([load_fixture("cheetah_forward")])  # the reward, once the fitness is approved
        decide_as_tester(search, run_id, dispatcher, approve_it=True)
        assert search.settle(local) == "succeeded"
    doc = search.doc(run_id)
    assert doc["task"]["fitness"] == "proposed" and doc["task"]["fitness_source"] == third["source"]
    assert [p["status"] for p in doc["fitness_proposals"]] == ["rejected", "rejected", "approved"]
    assert {p["decided_by"] for p in doc["fitness_proposals"]} == {"tester"}
    assert doc["fitness_proposals"][0]["note"] == "I care how high it jumps, not how far it goes."
    [candidate] = search.candidates(run_id)
    assert candidate["status"] == "trained" and candidate["reflection"].count("Final fitness (proposed)") == 1


def test_an_llm_that_does_not_answer_fails_the_run_and_resuming_proposes_again(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([Reply(status=503)])
        search = Search(sqlite_sf, tmp_path, server, llm_max_retries=0)
        run_id, status = search.run(BACKWARDS)
        assert status == "failed"
        with session_scope(search.sf) as s:
            error = s.get(Run, run_id).error
        assert error.startswith("the designer could not propose a fitness:") and "resume the run" in error
        assert records(search, run_id) == []
        server.script([load_fixture("fitness_backward")])
        assert search.resume(run_id) == "waiting_fitness"
        dispatcher = search.attach(run_id).dispatcher
    [p] = records(search, run_id)
    assert p["status"] == "proposed"
    with session_scope(search.sf) as s:
        run = s.get(Run, run_id)
        assert run.error is None
        with pytest.raises(Conflict, match="waits for a decision on its proposed fitness"):
            resume_run(s, run=run, dispatcher=dispatcher)


def test_a_second_delivery_waits_for_the_first_unless_its_worker_died(sqlite_sf, tmp_path) -> None:
    search = Search(sqlite_sf, tmp_path)
    settings, recorder = search.settings(), Recorder()
    with session_scope(sqlite_sf) as s:
        _, run = create_task(
            s,
            spec=task_spec(designer="offline", fitness="propose"),
            owner_id=None,
            settings=settings,
            dispatcher=recorder,
        )
        run_id = run.id
    steps.start_step(sqlite_sf, run_id, recorder, settings)
    assert recorder.calls == [("start", run_id), ("propose_fitness", run_id)]
    first = proposing._claim(sqlite_sf, run_id, Origin.OFFLINE, "a worker that is still proposing")
    assert first is not None
    propose = lambda: steps.propose_step(sqlite_sf, run_id, settings, proposer_factory(sqlite_sf, settings))  # noqa: E731
    propose()  # redelivered, or sent again by the sweep: the first is at work
    assert [p["status"] for p in records(search, run_id)] == ["proposing"]
    with session_scope(sqlite_sf) as s:
        assert s.get(Run, run_id).status == "queued"
        s.get(FitnessProposal, first.claim_id).created_at = utcnow() - timedelta(seconds=proposing.LEASE_SECONDS + 1)
    propose()  # the first worker died long ago: its claim is taken over
    [p] = records(search, run_id)
    assert p["status"] == "proposed" and p["name"] == "mean_x_velocity"  # "as fast as it can"
    proposing._store(sqlite_sf, run_id, first.claim_id, [], None)  # the first worker, back late, changes nothing
    with session_scope(sqlite_sf) as s:
        assert s.get(Run, run_id).status == "waiting_fitness"
    assert len(records(search, run_id)) == 1
