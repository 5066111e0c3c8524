"""The run page and the API show the run's diagnostics, and a run that learned nothing says so first."""

from __future__ import annotations

import app.search.machine.finish as finish
from app.db import session_scope
from app.db.models import Candidate, Run, Training
from app.search.records.runs import update_diagnostics
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in


def test_a_run_whose_candidates_all_scored_the_same_says_so_on_its_page_and_in_the_api(api: Api) -> None:
    bearer = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        good = s.get(Candidate, seeded.candidate_id)
        twin = Candidate(
            run_id=run.id,
            iteration_id=good.iteration_id,
            index=2,
            origin="llm",
            code=good.code,
            status="trained",
            fitness=good.fitness,
            fitness_std=good.fitness_std,
            critic=[],
            dry_run={},
        )
        s.add(twin)
        s.flush()
        s.refresh(run)
        update_diagnostics(run)
    body = api.client.get(f"{API}/runs/{seeded.run_id}", headers=bearer).json()
    assert body["diagnostics"][0]["code"] == "candidates_indistinguishable"
    assert body["summary"].startswith("the search learned nothing: all 2 candidates scored within")
    page = log_in(api, "alice").client.get(f"/runs/{seeded.run_id}").text
    assert 'id="run-diagnostics"' in page and "<code>candidates_indistinguishable</code>" in page
    assert "the search learned nothing" in page and "What to do:" in page


def test_a_yardstick_that_could_not_be_measured_says_why_on_the_run_page(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        run.final = {**(run.final or {}), "yardstick": {"seeds": [], "note": "not measured: no fresh seed <b>"}}
    browser = log_in(api, "alice")
    for url in (f"/runs/{seeded.run_id}", f"/ui/runs/{seeded.run_id}/live"):
        r = browser.client.get(url)
        assert r.status_code == 200, url
        assert "Yardstick not measured: no fresh seed &lt;b&gt;." in r.text


def test_the_run_page_says_why_a_normalized_score_is_not_shown_and_judges_the_yardstick_against_noise(
    api: Api,
) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    score, note = finish.normalized_score(best=2.0, reference=0.5, sparse=1.2, band=0.1)
    yard = finish.yardstick(
        Candidate(trainings=[Training(purpose="final", status="ok", seed=9, result={"fitness": {"mean": 1.0}})]),
        Candidate(trainings=[Training(purpose="final", status="ok", seed=9, result={"fitness": {"mean": 0.99}})]),
    )
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        run.final = {
            **(run.final or {}),
            "baselines": {"reference": 0.5, "sparse": 1.2},
            "normalized_score": score,
            "normalized_score_note": note,
            "yardstick": yard,
        }
    page = log_in(api, "alice").client.get(f"/runs/{seeded.run_id}").text
    assert "Normalized score: not shown" in page and "scored below the fitness used as reward" in page
    assert "cannot tell better from worse" in page
