"""Requests for another fitness proposal are bounded: each is a designer call plus a sandboxed measurement. A run may
have ``fitness_proposals_per_run`` proposals (409 beyond, saying what to do instead), and one person may ask
``fitness_reproposals_per_hour`` times an hour over all their runs (429 with when to try again)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import FitnessProposal, Run
from app.search.records.runs import set_status
from app.search.rules.states import Origin, ProposalStatus, RunStatus
from tests.app.api.harness import API, Api, make_api
from tests.app.api.test_fitness import BACKWARDS, JUMP_HIGH, proposed, work_off
from tests.app.dashboard.harness import log_in


def statuses(api: Api, run_id: int) -> tuple[list[str], str]:
    with session_scope(api.sf) as s:
        rows = s.scalars(select(FitnessProposal).where(FitnessProposal.run_id == run_id).order_by(FitnessProposal.id))
        return [p.status for p in rows], s.get(Run, run_id).status


def test_a_run_has_at_most_its_cap_of_proposals(db_sf: sessionmaker, tmp_path: Path) -> None:
    """Real proposals (the offline designer, measured in the sandbox); the third is refused with what to do."""
    api = make_api(db_sf, tmp_path, fitness_proposals_per_run=2)
    alice = api.user("alice")
    run_id = proposed(api, alice)
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"repropose": True}, headers=alice)
    assert res.status_code == 200, res.text
    work_off(api, run_id)
    assert statuses(api, run_id) == (["rejected", "proposed"], "waiting_fitness")
    calls = list(api.dispatcher.calls)
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"repropose": True}, headers=alice)
    assert res.status_code == 409, res.text
    message = res.json()["error"]["message"]
    assert f"run {run_id} has had 2 fitness proposals, the most one run may have" in message
    assert "REWARDSMITH_FITNESS_PROPOSALS_PER_RUN = 2" in message and "send your own program" in message
    assert statuses(api, run_id) == (["rejected", "proposed"], "waiting_fitness") and api.dispatcher.calls == calls
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"source": JUMP_HIGH}, headers=alice)
    assert res.status_code == 200, "a person's own program is still welcome"


def waiting_with_a_repaired_proposal(api: Api, headers: dict) -> int:
    """A 'propose' run as the proposing step leaves it after an LLM's draft failed the checks and its repair passed:
    two open proposals of one round (written here, so that no sandbox runs)."""
    run_id = api.client.post(f"{API}/tasks", json=BACKWARDS, headers=headers).json()["run_id"]
    another_round(api, run_id)
    return run_id


def another_round(api: Api, run_id: int) -> None:
    with session_scope(api.sf) as s:
        run = s.get(Run, run_id)
        for origin, status in ((Origin.LLM, ProposalStatus.BROKEN), (Origin.REPAIR, ProposalStatus.PROPOSED)):
            s.add(
                FitnessProposal(
                    run_id=run_id, origin=origin, author="gpt", status=status, name="jump", source=JUMP_HIGH
                )
            )
        set_status(run, RunStatus.WAITING_FITNESS)


def test_a_person_may_ask_for_so_many_proposals_an_hour(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, fitness_reproposals_per_hour=2, check_slots_per_user=4, check_slots_total=8)
    alice, bob = api.user("alice"), api.user("bob")
    first, second = waiting_with_a_repaired_proposal(api, alice), waiting_with_a_repaired_proposal(api, alice)
    ask = {"repropose": True, "note": "higher"}
    assert api.client.post(f"{API}/runs/{first}/fitness", json=ask, headers=alice).status_code == 200
    assert statuses(api, first)[0] == ["rejected", "rejected"], "one request sets aside a draft and its repair"
    another_round(api, first)
    assert api.client.post(f"{API}/runs/{first}/fitness", json=ask, headers=alice).status_code == 200
    res = api.client.post(f"{API}/runs/{second}/fitness", json=ask, headers=alice)
    assert res.status_code == 429, res.text
    message = res.json()["error"]["message"]
    assert "you asked for another fitness proposal 2 times in the last hour, the most allowed" in message
    assert "REWARDSMITH_FITNESS_REPROPOSALS_PER_HOUR = 2" in message and "try again in 60 minute(s)" in message
    assert 3500 < int(res.headers["Retry-After"]) <= 3600
    assert statuses(api, second) == (["broken", "proposed"], "waiting_fitness"), "nothing changed"

    browser = log_in(api, "alice")
    page = browser.post(f"/runs/{second}/fitness/repropose", {"note": "higher"})
    assert page.status_code == 429 and "you asked for another fitness proposal 2 times" in page.text

    bobs = waiting_with_a_repaired_proposal(api, bob)
    assert api.client.post(f"{API}/runs/{bobs}/fitness", json=ask, headers=bob).status_code == 200, "per person"
