"""Whole searches designed by an LLM: the real `openai` client against a loopback server that replays scripted
answers, a real SQLite database, real sandboxed PPO on tiny budgets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import make_engine, session_scope
from app.db.models import LLMCacheEntry, Run
from app.errors import Conflict
from app.llm.extraction import extract_program
from app.search.service import resume_run
from tests.app.search.harness import Search, design_requests, task_spec, user_prompt
from tests.support.db import fresh_postgres_database, sqlite_database
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fixtures import load_fixture

pytestmark = pytest.mark.slow

TWO_BY_TWO = task_spec(iterations=2, samples=2, options={"max_repairs": 1})
"""Round 1: a sound program and an answer without code whose repair does not parse (rejected: one repair only).
Round 2: a refinement and a program that reads a missing field, repaired with helpers."""
SCRIPT = ["cheetah_forward", "no_code", "syntax_error", "cheetah_forward_v2", "wrong_field", "cheetah_helpers"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def run_sf(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker]:
    """Sessions on a database of this test's own that several threads may use: SQLite, and PostgreSQL."""
    if request.param == "sqlite":
        yield sessionmaker(bind=make_engine(sqlite_database(tmp_path)), expire_on_commit=False)
        return
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        yield sessionmaker(bind=engine, expire_on_commit=False)
        engine.dispose()


@dataclass
class Finished:
    search: Search
    server: FakeOpenAI
    run_id: int
    status: str


@pytest.fixture(scope="module")
def two_by_two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finished]:
    """One 2 × 2 run, shared by the tests that read it (and by the cached re-run, which adds a run of its own)."""
    tmp = tmp_path_factory.mktemp("two_by_two")
    sf = sessionmaker(bind=make_engine(sqlite_database(tmp)), expire_on_commit=False)
    with FakeOpenAI() as server:
        server.script([load_fixture(name) for name in SCRIPT])
        search = Search(sf, tmp, server)
        run_id, status = search.run(TWO_BY_TWO)
        yield Finished(search, server, run_id, status)


def test_a_two_by_two_run_succeeds_and_reports_every_candidate(two_by_two: Finished) -> None:
    search, run_id = two_by_two.search, two_by_two.run_id
    assert two_by_two.status == "succeeded", search.doc(run_id)["error"]
    assert two_by_two.server.remaining == 0 and len(two_by_two.server.requests) == 4
    doc = search.doc(run_id)
    assert doc["designer"] == "LLM designer (fake-model)"
    assert [it["status"] for it in doc["iterations"]] == ["done", "done"]
    first, second = ([(c["origin"], c["status"]) for c in it["candidates"]] for it in doc["iterations"])
    assert first == [("llm", "trained"), ("repair", "rejected")]
    assert second == [("llm", "trained"), ("repair", "trained")]
    trained = [c for it in doc["iterations"] for c in it["candidates"] if c["status"] == "trained"]
    for c in trained:
        # round 2's children start from their parent's policy and train half the budget (warm_start_budget 0.5)
        steps = 2048 if c["lineage"]["started_from"] == "scratch" else 1024
        assert isinstance(c["fitness"], float) and c["reflection"].startswith(f"We trained PPO for {steps} steps")
        assert c["trainings"][0]["status"] == "ok" and c["trainings"][0]["timesteps"] == steps
        assert set(c["components"]) and len(c["fitness_curve"]) == 2
    assert doc["best_candidate"]["fitness"] == max(c["fitness"] for c in trained)
    assert doc["best_candidate"]["code"] in {extract_program(load_fixture(n)).source for n in SCRIPT if n != "no_code"}
    assert doc["final"]["fitness_per_seed"] == [doc["best_candidate"]["fitness"]]
    # round 2 evolves from round 1's best
    assert doc["iterations"][1]["parent_id"] == doc["iterations"][0]["candidates"][0]["id"]
    usage = doc["usage"]
    assert usage["requests"] == 4 and usage["failed_requests"] == 0 and usage["cached_requests"] == 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 1000
    assert [c["lineage"]["started_from"] for c in trained] == ["scratch", "its parent's policy", "its parent's policy"]
    assert usage["timesteps_trained"] == 2048 + 2 * 1024


def test_an_answer_without_code_is_kept_as_a_rejected_candidate_with_its_reasons(two_by_two: Finished) -> None:
    rejected = two_by_two.search.doc(two_by_two.run_id)["iterations"][0]["candidates"][1]
    assert rejected["status"] == "rejected" and rejected["trainings"] == []
    assert rejected["error"].startswith("The reward program was rejected at the parse")
    checks = [n["text"] for n in rejected["critic"] if n["stage"] == "check"]
    assert checks[0].startswith("no program could be taken from the answer: the answer has no fenced ```python")
    assert "expected ':'" in checks[1]


def test_the_second_round_carries_the_first_rounds_errors_and_reflection(two_by_two: Finished) -> None:
    search, run_id = two_by_two.search, two_by_two.run_id
    first = search.doc(run_id)["iterations"][0]["candidates"]
    parent, rejected = first
    requests = design_requests(two_by_two.server)
    assert len(requests) == 2
    initial, iteration = (user_prompt(r) for r in requests)
    assert "best reward so far" not in initial and "Errors in the last round" not in initial
    assert "## The best reward so far (candidate 1.1, fitness" in iteration
    assert parent["reflection"].strip() in iteration
    assert parent["code"].strip() in iteration
    assert (
        "## Errors in the last round (avoid them)\n- candidate 1.2: The reward program was rejected at the parse"
        in iteration
    )
    assert rejected["error"][:200] in iteration
    # the repair in round 2 went back with its own error, in the conversation of the round-2 design
    repair = two_by_two.server.requests[-1]
    assert repair["messages"][:2] == requests[1]["messages"]
    assert "the state has no field 'torso_velocity_x'" in user_prompt(repair)
    context = search.iterations(run_id)[1].context
    assert context["parent_id"] == parent["id"] and [e["id"] for e in context["errors"]] == [rejected["id"]]


def test_a_rerun_of_the_same_task_is_served_from_the_cache(two_by_two: Finished) -> None:
    search, server = two_by_two.search, two_by_two.server
    assert two_by_two.status == "succeeded"
    assert server.remaining == 0  # anything sent now would be answered 'HTTP 500: script exhausted'
    sent = len(server.requests)
    run_id, status = search.run(TWO_BY_TWO)
    assert len(server.requests) == sent, [user_prompt(r)[:80] for r in server.requests[sent:]]
    assert status == "succeeded", search.doc(run_id)["error"]
    usage = search.doc(run_id)["usage"]
    assert (usage["requests"], usage["total_tokens"], usage["failed_requests"]) == (0, 0, 0)
    assert usage["cached_requests"] == 4
    exchanges = search.exchanges(run_id)
    assert [(e["purpose"], e["status"], e["cached"]) for e in exchanges] == [
        ("design", "cached", True),
        ("repair", "cached", True),
        ("design", "cached", True),
        ("repair", "cached", True),
    ]
    before, after = (search.candidates(r) for r in (two_by_two.run_id, run_id))
    assert [(c["origin"], c["status"], c["code"]) for c in before] == [
        (c["origin"], c["status"], c["code"]) for c in after
    ]
    with session_scope(search.sf) as s:
        assert len(list(s.scalars(select(LLMCacheEntry)))) >= 4


def test_rate_limits_server_errors_timeouts_and_garbage_are_retried_and_recorded(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script(
            [
                Reply(status=429, headers={"Retry-After": "0"}),
                Reply(status=500),
                Reply(content=load_fixture("cheetah_forward"), delay=3.0),
                Reply(raw_body="garbage"),
                load_fixture("cheetah_forward"),
            ]
        )
        search = Search(sqlite_sf, tmp_path, server, llm_timeout_seconds=0.5, llm_max_retries=4)
        run_id, status = search.run(task_spec())
        assert status == "succeeded", search.doc(run_id)["error"]
        assert len(server.requests) == 5
    exchanges = search.exchanges(run_id)
    assert [(e["status"], e["attempt"]) for e in exchanges] == [
        ("error", 1),
        ("error", 2),
        ("error", 3),
        ("error", 4),
        ("ok", 5),
    ]
    errors = [e["error"] for e in exchanges[:4]]
    assert errors[0].startswith("HTTP 429") and exchanges[0]["http_status"] == 429
    assert errors[1].startswith("HTTP 500") and exchanges[1]["http_status"] == 500
    assert errors[2] == "no answer within 0.5 s (timeout)"
    assert errors[3] == "the server answered HTTP 200 with a body that is not JSON: 'garbage'"
    assert all(e["prompt_tokens"] == 0 for e in exchanges[:4]) and exchanges[4]["prompt_tokens"] > 0
    usage = search.doc(run_id)["usage"]
    assert (usage["requests"], usage["failed_requests"]) == (1, 4)
    [c] = search.candidates(run_id)
    assert c["status"] == "trained" and c["origin"] == "llm"


def test_an_llm_that_keeps_failing_fails_the_run_which_resumes_once_it_answers(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:  # an empty script: every request is answered HTTP 500
        search = Search(sqlite_sf, tmp_path, server, llm_max_retries=1)
        run_id, status = search.run(task_spec())
        assert status == "failed"
        doc = search.doc(run_id)
        error = doc["error"]
        assert error.startswith("the designer could not get an answer from the LLM: ")
        assert "gave no usable answer after 2 attempt(s)" in error and "HTTP 500: script exhausted" in error
        assert f"POST /api/v1/runs/{run_id}/resume" in error and "designer 'offline'" in error
        assert ".." not in error
        assert doc["iterations"][0]["status"] == "designing" and doc["iterations"][0]["candidates"] == []
        assert [(e["status"], e["attempt"]) for e in search.exchanges(run_id)] == [("error", 1), ("error", 2)]
        assert doc["usage"]["failed_requests"] == 2

        server.script([load_fixture("cheetah_forward")])
        assert search.resume(run_id) == "succeeded"
        doc = search.doc(run_id)
        assert doc["error"] is None and len(doc["iterations"]) == 1
        assert [c["status"] for c in doc["iterations"][0]["candidates"]] == ["trained"]
        assert [e["status"] for e in search.exchanges(run_id)] == ["error", "error", "ok"]


def test_identical_programs_are_trained_once(run_sf, tmp_path) -> None:
    forward = load_fixture("cheetah_forward")
    restyled = forward.replace("    # Main objective: forward speed of the torso along +x.\n", "").replace(
        "forward_temp", "speed_gain"
    )
    assert restyled != forward
    with FakeOpenAI() as server:
        server.script([forward, forward, restyled])
        search = Search(run_sf, tmp_path, server)
        run_id, status = search.run(task_spec(samples=3))
        assert status == "succeeded"
        assert len(server.requests) == 1 and server.requests[0]["n"] == 3
    first, same, renamed = search.candidates(run_id)
    assert first["status"] == "trained"
    for dup in (same, renamed):
        assert dup["status"] == "duplicate" and dup["duplicate_of"] == first["id"] and dup["trainings"] == []
        assert dup["error"] == f"the same program (up to names, comments and layout) as candidate {first['id']}"
    assert len(search.trainings(run_id)) == 1
    assert search.doc(run_id)["usage"]["timesteps_trained"] == 2048


def test_a_program_the_llm_repeats_in_a_later_round_is_not_trained_again(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward"), load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(iterations=2))
        assert status == "succeeded"
    first, again = search.candidates(run_id)
    assert again["status"] == "duplicate" and again["duplicate_of"] == first["id"]
    assert len(search.trainings(run_id)) == 1
    assert search.doc(run_id)["best_candidate"]["id"] == first["id"]


def test_a_run_whose_candidates_are_all_rejected_fails_with_their_errors(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("forbidden_import"), load_fixture("no_code")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(options={"max_repairs": 1}))
        assert status == "failed"
        doc = search.doc(run_id)
        [c] = search.candidates(run_id)
        assert c["status"] == "rejected" and c["error"].startswith("no program could be taken from the answer")
        assert doc["error"].startswith("no candidate could be trained; the last errors were: no program could be taken")
        assert search.trainings(run_id) == []
        with session_scope(search.sf) as s, pytest.raises(Conflict, match="nothing left to resume: submit the task"):
            resume_run(s, run=s.get(Run, run_id), dispatcher=search.attach(run_id).dispatcher)
        assert search.doc(run_id)["status"] == "failed"


def test_with_critic_review_a_rejected_program_is_replaced_by_the_critics_fix(sqlite_sf, tmp_path) -> None:
    fixed = extract_program(load_fixture("cheetah_forward")).source
    verdict = (
        "It pays torso height, which the cheetah gets by standing still.\n\n```json\n"
        + json.dumps({"verdict": "reject", "reasons": ["pays height, not progress"], "fixed_code": fixed})
        + "\n```\n"
    )
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_flip_hack"), verdict])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(options={"critic_review": True}))
        assert status == "succeeded"
        assert user_prompt(server.requests[1]).startswith("You review reward functions")
    [c] = search.candidates(run_id)
    assert (c["origin"], c["status"], c["code"]) == ("critic", "trained", fixed)
    assert "forward" in c["components"]
    assert ("review", "reject", "pays height, not progress") in [
        (n["stage"], n["verdict"], n["text"]) for n in c["critic"]
    ]
    assert [e["purpose"] for e in search.exchanges(run_id)] == ["design", "critic"]


def test_extraction_warnings_are_kept_with_the_candidate(sqlite_sf, tmp_path) -> None:
    drafts = (
        "First a draft:\n\n```python\ndef compute_reward(state, action):\n    return state.x_velocity, {}\n```\n\n"
        "Better:\n\n" + load_fixture("cheetah_forward")
    )
    with FakeOpenAI() as server:
        server.script([drafts])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec())
        assert status == "succeeded"
    [c] = search.candidates(run_id)
    assert c["code"] == extract_program(load_fixture("cheetah_forward")).source
    warnings = search.candidate(c["id"]).design["warnings"]
    assert any("earlier draft" in w for w in warnings)
