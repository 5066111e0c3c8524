"""The run page shows both results (the reward from scratch and the lineage policy) and the trainings the screen
saved; the candidate page and the API show a candidate's screen verdict and lineage; text from a sandbox is
escaped."""

from __future__ import annotations

from app.db import session_scope
from app.db.models import Candidate, Run
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in

SCREEN = {
    "verdict": "ranks_against_fitness",
    "text": "this reward prefers the episode that fell over at step 80 <b>to</b> the one that ran 40.3 m",
    "rho": -0.82,
    "parent_rho": 0.64,
    "episodes": 7,
    "returns": [1.0] * 7,
    "fitness": [2.0] * 7,
}


def test_the_run_page_shows_the_lineage_policy_beside_the_reward_from_scratch(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        run.final = {
            **(run.final or {}),
            "lineage": {
                "steps_own": 2048,
                "steps_ancestors": 4096,
                "steps_total": 6144,
                "scratch_steps": 2048,
                "seeds": [1000],
                "policy_mean": 30.5,
                "scratch_mean": 10.25,
                "reference_mean": 14.0,
                "reference_steps": 6144,
                "verdict": "above",
            },
        }
        run.usage = {**(run.usage or {}), "screened": 4, "trainings_saved_by_screen": 1}
    page = log_in(api, "alice").client.get(f"/runs/{seeded.run_id}").text
    assert 'id="lineage"' in page
    assert "The best reward <strong>retrained from scratch</strong> (2,048 steps): 10.25" in page
    assert "(2,048 steps of its own after 4,096 of its ancestors'): 30.5" in page
    assert "The reference reward, 6,144 steps (the lineage's total: its baseline policy trained on)" in page
    assert "the lineage policy is above it by more than the seeds&#39; noise" in page
    assert "refused 1 of 4 screened rewards before training: 1 training(s) saved" in page


def test_the_candidate_page_and_the_api_show_the_screen_and_the_lineage(api: Api) -> None:
    bearer = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        c = s.get(Candidate, seeded.candidate_id)
        c.screen, c.steps_own, c.steps_ancestors = SCREEN, 2048, 4096
    body = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=bearer).json()
    assert body["screen"]["verdict"] == "ranks_against_fitness" and body["screen"]["rho"] == -0.82
    assert body["lineage"] == {
        "steps_own": 2048,
        "steps_ancestors": 4096,
        "steps_total": 6144,
        "started_from": "its parent's policy",
    }
    page = log_in(api, "alice").client.get(f"/candidates/{seeded.candidate_id}").text
    assert "Spearman's rho -0.82 over 7 recorded episodes; its parent reward's +0.64" in page
    assert body["screen"]["parent_rho"] == 0.64
    assert "fell over at step 80 &lt;b&gt;to&lt;/b&gt; the one" in page, "the sandbox's text is escaped"
    assert "2,048 steps of its own after 4,096 of its ancestors' (6,144 in all)" in page
