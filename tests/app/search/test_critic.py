"""The critic: every proposal is checked in the sandbox, rejected ones go back to the LLM with the error, and an
optional LLM review may reject or fix a program. The LLM is the loopback fake server; the sandbox is real."""

from __future__ import annotations

import json

import pytest

from app.llm.client import LLMClient, LLMConfig
from app.llm.extraction import extract_program
from app.llm.store import MemoryStore
from app.search.design.critic import SCREEN_EPISODES, screen_record, vet
from app.search.design.designers import DesignContext, LLMDesigner, Proposal, parse_review
from envs import get_spec
from envs.describe import describe
from envs.fitness import METRICS
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fixtures import load_fixture
from workers.engine.evaluate import sandbox_check
from workers.sandbox.runner import Limits

ENV = "HalfCheetah-v5"
LIMITS = Limits(wall_seconds=60, memory_mb=4096, max_file_mb=64)
FORWARD = extract_program(load_fixture("cheetah_forward")).source
HELPERS = extract_program(load_fixture("cheetah_helpers")).source


def check(code: str):
    return sandbox_check(ENV, code, "reward", LIMITS)


def context() -> DesignContext:
    metric = METRICS["forward_distance"]
    return DesignContext(
        run_id=None,
        iteration=0,
        seed=0,
        env=ENV,
        env_description=describe(get_spec(ENV)),
        task="make the cheetah run forward",
        fitness_name=metric.name,
        fitness_meaning=metric.meaning,
        fitness_source=metric.source,
        eval_episodes=1,
    )


def designer(server: FakeOpenAI, *, review: bool = False) -> LLMDesigner:
    config = LLMConfig(
        base_url=server.base_url,
        api_key="sk-test",
        model="fake-model",
        max_retries=0,
        backoff_seconds=0.01,
        timeout_seconds=5.0,
    )
    return LLMDesigner(LLMClient(config, MemoryStore()), "fake-model", review=review)


def proposal(d: LLMDesigner, fixture: str) -> Proposal:
    """What the designer makes of an answer (as if the LLM had sent it)."""
    return d._proposal(load_fixture(fixture), d._messages(context()), "llm")


@pytest.mark.parametrize(
    "fixture, stage, words",
    [
        ("syntax_error", "parse", "expected ':'"),
        ("wrong_field", "dry run", "the state has no field 'torso_velocity_x'"),
        ("python_branching", "dry run", "A Python `if`, `and`, `or`, `not` or `while` was applied to a batched array"),
        ("forbidden_import", "static check", "importing `os` is not allowed"),
    ],
)
@pytest.mark.slow
def test_a_rejected_program_goes_back_to_the_llm_with_the_error(fake_llm, fixture, stage, words) -> None:
    fake_llm.script([load_fixture("cheetah_forward")])
    d = designer(fake_llm)
    v = vet(proposal(d, fixture), context(), d, check=check)
    assert v.status == "accepted" and v.origin == "repair" and v.repairs == 1
    assert v.code == FORWARD and v.dry_run["components"] == ["forward", "ctrl_cost", "flip_penalty"]
    [request] = fake_llm.requests
    repair = request["messages"][-1]["content"]
    assert repair.startswith("Your reward program was rejected before training.")
    assert f"rejected at the {stage}" in repair and words in repair
    assert extract_program(load_fixture(fixture)).source.strip() in repair
    # the repair continues the conversation that produced the program
    assert request["messages"][-2] == {"role": "assistant", "content": load_fixture(fixture)}
    assert [n["stage"] + ":" + n["verdict"] for n in v.notes] == ["check:rejected", "repair:proposed", "check:accepted"]
    assert words in v.notes[0]["text"]


def test_an_answer_without_code_is_repaired_not_dropped(fake_llm) -> None:
    fake_llm.script([load_fixture("cheetah_helpers")])
    d = designer(fake_llm)
    p = proposal(d, "no_code")
    assert p.code is None and p.error.startswith("no program could be taken from the answer: the answer has no fenced")
    v = vet(p, context(), d, check=check)
    assert v.status == "accepted" and v.code == HELPERS and v.origin == "repair"
    repair = fake_llm.requests[0]["messages"][-1]["content"]
    assert "no program could be taken from the answer" in repair
    assert "To make the cheetah run forward you should reward" in repair  # the answer itself is shown


def test_when_the_repairs_fail_too_the_candidate_is_rejected_with_the_last_error(fake_llm) -> None:
    fake_llm.script([load_fixture("python_branching"), load_fixture("wrong_field")])
    d = designer(fake_llm)
    v = vet(proposal(d, "no_code"), context(), d, check=check, max_repairs=2)
    assert v.status == "rejected" and v.repairs == 2
    assert "the state has no field 'torso_velocity_x'" in v.error
    assert v.answer == load_fixture("wrong_field") and v.dry_run == {}
    assert [n["verdict"] for n in v.notes if n["stage"] == "check"] == ["rejected"] * 3
    assert len(fake_llm.requests) == 2
    # the second repair carries the first repair's error, not the original one
    second = fake_llm.requests[1]["messages"][-1]["content"]
    assert "A Python `if`" in second and "no program could be taken" not in second


def test_repairs_are_bounded(fake_llm) -> None:
    d = designer(fake_llm)
    v = vet(proposal(d, "syntax_error"), context(), d, check=check, max_repairs=0)
    assert v.status == "rejected" and "expected ':'" in v.error
    assert fake_llm.requests == []


def test_an_llm_that_fails_during_a_repair_leaves_the_candidate_rejected_with_its_own_error(fake_llm) -> None:
    fake_llm.script([Reply(status=500)])
    d = designer(fake_llm)
    v = vet(proposal(d, "wrong_field"), context(), d, check=check)
    assert v.status == "rejected" and "torso_velocity_x" in v.error
    assert v.notes[-1]["stage"] == "repair" and v.notes[-1]["verdict"] == "failed"
    assert "HTTP 500" in v.notes[-1]["text"]


def review_answer(verdict: str, reasons: list[str], fixed_code: str | None) -> str:
    return (
        "I read the reward and its dry run.\n\n```json\n"
        + json.dumps({"verdict": verdict, "reasons": reasons, "fixed_code": fixed_code}, indent=2)
        + "\n```\n"
    )


def test_the_llm_review_can_reject_a_program_and_its_fix_is_used_as_a_critic_candidate(fake_llm) -> None:
    hack = extract_program(load_fixture("cheetah_flip_hack")).source
    fake_llm.script([review_answer("reject", ["it pays height, not progress: standing tall earns reward"], FORWARD)])
    d = designer(fake_llm, review=True)
    v = vet(proposal(d, "cheetah_flip_hack"), context(), d, check=check, review_rounds=1)
    assert v.status == "accepted" and v.origin == "critic" and v.code == FORWARD
    assert v.dry_run["components"] == ["forward", "ctrl_cost", "flip_penalty"]
    [request] = fake_llm.requests
    prompt = request["messages"][0]["content"]
    assert prompt.startswith("You review reward functions") and hack.strip() in prompt
    assert "height: mean" in prompt and "sampled states" in prompt  # the dry run is shown
    assert [(n["stage"], n["verdict"]) for n in v.notes][-2:] == [("review", "reject"), ("review", "fixed")]
    assert "it pays height, not progress" in v.notes[-2]["text"]


def test_a_review_rejection_without_a_fix_rejects_the_candidate(fake_llm) -> None:
    fake_llm.script([review_answer("reject", ["it pays height, not progress"], None)])
    d = designer(fake_llm, review=True)
    v = vet(proposal(d, "cheetah_flip_hack"), context(), d, check=check, review_rounds=1)
    assert v.status == "rejected" and v.error == "the critic rejected it: it pays height, not progress"


@pytest.mark.slow
def test_a_review_fix_that_fails_the_checks_keeps_the_original(fake_llm) -> None:
    broken = extract_program(load_fixture("wrong_field")).source
    fake_llm.script([review_answer("reject", ["pays height"], broken)])
    d = designer(fake_llm, review=True)
    v = vet(proposal(d, "cheetah_flip_hack"), context(), d, check=check, review_rounds=1)
    assert v.status == "accepted" and v.origin == "llm" and "z_position" in v.code
    assert v.notes[-1]["verdict"] == "fix rejected" and "torso_velocity_x" in v.notes[-1]["text"]


@pytest.mark.slow
def test_an_accepting_review_changes_nothing_and_no_review_is_asked_when_off(fake_llm) -> None:
    fake_llm.script([review_answer("accept", ["fine"], None)])
    d = designer(fake_llm, review=True)
    v = vet(proposal(d, "cheetah_forward"), context(), d, check=check, review_rounds=1)
    assert (v.status, v.origin, v.code) == ("accepted", "llm", FORWARD)
    assert v.notes[-1] == {"stage": "review", "verdict": "accept", "text": "fine"}
    off = designer(fake_llm, review=False)
    vet(proposal(off, "cheetah_forward"), context(), off, check=check, review_rounds=1)
    assert len(fake_llm.requests) == 1


def test_a_failing_review_is_skipped_not_fatal(fake_llm) -> None:
    fake_llm.script([Reply(status=503)])
    d = designer(fake_llm, review=True)
    v = vet(proposal(d, "cheetah_forward"), context(), d, check=check, review_rounds=1)
    assert v.status == "accepted" and v.notes[-1]["verdict"] == "skipped" and "HTTP 503" in v.notes[-1]["text"]


def test_review_answers_are_read_leniently() -> None:
    fenced = parse_review(
        'Verdict:\n```json\n{"verdict": "reject", "reasons": "too sparse", '
        '"fixed_code": "```python\\nimport numpy as np\\n```"}\n```'
    )
    assert (fenced.verdict, fenced.reasons, fenced.fixed_code) == ("reject", ["too sparse"], "import numpy as np\n")
    bare = parse_review('{"verdict": "accept", "reasons": [], "fixed_code": ""}')
    assert (bare.verdict, bare.fixed_code) == ("accept", None)
    unreadable = parse_review("Looks good to me!")
    assert unreadable.verdict == "accept" and "could not be read as a verdict" in unreadable.reasons[0]
    assert parse_review('{"verdict": "maybe"}').verdict == "accept"


def test_a_screen_verdict_from_the_sandbox_is_bounded_before_it_is_kept() -> None:
    """The sandbox ran LLM-written code: its verdict is checked field by field, the parent's rho included."""
    sent = {
        "verdict": "pass",
        "text": "passed:\nabout as its parent reward does",
        "rho": -0.7,
        "parent_rho": -0.8,
        "episodes": 3,
        "returns": [1.0, 2.0, 3.0],
        "fitness": [3.0, 2.0, 1.0],
    }
    kept = screen_record(sent)
    assert kept is not None and kept["parent_rho"] == -0.8 and "\n" not in kept["text"]
    assert screen_record({**sent, "parent_rho": None})["parent_rho"] is None  # type: ignore[index]
    for bad in (float("nan"), 1.5, True, "0.3", -2):
        assert screen_record({**sent, "parent_rho": bad}) is None, bad
    assert screen_record({**sent, "verdict": "trust me"}) is None
    assert screen_record({**sent, "returns": [1.0] * (SCREEN_EPISODES + 1)}) is None
