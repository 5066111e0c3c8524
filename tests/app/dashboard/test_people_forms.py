"""The dashboard's forms where a person decides: a task that asks for a proposed fitness and human selection, the
proposal's approve / edit / ask-again forms, and choosing the best of a group. Same rules as the API (one service
path); what people typed is shown escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Candidate, Iteration, Run, SelectionChoice, Task, Training, User, utcnow
from app.search.machine import steps
from app.search.machine.factory import proposer_factory
from app.search.records.runs import pending_feedback
from app.search.service import TaskSpec, create_task
from tests.app.api.harness import Api, make_api
from tests.app.dashboard.harness import TASK_FORM, Browser
from tests.app.dashboard.test_forms import signed_in
from tests.support.dispatch import RecordingDispatcher
from tests.support.tasks import TINY

SNEAKY = "run backwards <script>alert(1)</script>"


def proposal_run(api: Api, browser: Browser, description: str = SNEAKY) -> int:
    """A 'propose' task created through the dashboard form, its proposal made (offline designer, real sandbox)."""
    form = {**TASK_FORM, "description": description, "fitness_kind": "propose", "human_selection": "on"}
    r = browser.post("/tasks/new", form)
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    steps.start_step(api.sf, run_id, api.dispatcher, api.settings)
    steps.propose_step(api.sf, run_id, api.settings, proposer_factory(api.sf, api.settings))
    return run_id


def test_the_form_asks_for_a_proposed_fitness_and_human_selection(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    run_id = proposal_run(api, browser)
    with session_scope(api.sf) as s:
        task = s.get(Run, run_id).task
        assert (task.fitness_name, task.selection, task.options["train"]["video"]) == ("propose", "human", True)
    page = browser.client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    html = page.text
    assert "Proposed fitness" in html and "backward_distance" in html and "random-policy episodes" in html
    assert f'action="/runs/{run_id}/fitness/approve"' in html and "Ask for another proposal" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Decisions by people" in html and "offline designer (no LLM)" in html


@pytest.mark.slow
def test_a_broken_edit_shows_the_checkers_message_and_keeps_the_text(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    run_id = proposal_run(api, browser)
    broken = "def compute_fitness(traj):\n    return float(traj.speed[0])  # </textarea><b>x</b>\n"
    r = browser.post(f"/runs/{run_id}/fitness/edit", {"source": broken})
    assert r.status_code == 422
    assert "the state has no field &#39;speed&#39;" in r.text
    assert "# &lt;/textarea&gt;&lt;b&gt;x&lt;/b&gt;" in r.text and "</textarea><b>" not in r.text
    with session_scope(api.sf) as s:
        assert s.get(Run, run_id).status == "waiting_fitness"


@pytest.mark.slow
def test_asking_again_then_approving_through_the_dashboard(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    run_id = proposal_run(api, browser)
    note = "measure how high it <b>jumps</b>"
    r = browser.post(f"/runs/{run_id}/fitness/repropose", {"note": note})
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run_id}"
    steps.start_step(api.sf, run_id, api.dispatcher, api.settings)
    steps.propose_step(api.sf, run_id, api.settings, proposer_factory(api.sf, api.settings))
    html = browser.client.get(f"/runs/{run_id}").text
    assert "max_height" in html and "measure how high it &lt;b&gt;jumps&lt;/b&gt;" in html
    r = browser.post(f"/runs/{run_id}/fitness/approve")
    assert r.status_code == 303
    assert api.dispatcher.calls[-1] == ("start", run_id)
    with session_scope(api.sf) as s:
        run = s.get(Run, run_id)
        assert run.status == "queued" and run.task.fitness_name == "proposed"
    unknown = browser.post(f"/runs/{run_id}/fitness/launch")
    assert unknown.status_code == 422 and "unknown decision" in unknown.text


def waiting_for_choice(api: Api, owner: str) -> tuple[int, list[int]]:
    """A human-selection run that waits after iteration 1 with two trained candidates, each with a video file."""
    with session_scope(api.sf) as s:
        owner_id = s.scalar(select(User.id).where(User.name == owner))
        spec = TaskSpec(**(TINY | {"selection": "human", "samples": 2}))
        _, run = create_task(s, spec=spec, owner_id=owner_id, settings=api.settings, dispatcher=RecordingDispatcher())
        run.status, run.started_at = "waiting_feedback", utcnow()
        it = Iteration(run_id=run.id, index=0, status="done", context={})
        s.add(it)
        s.flush()
        ids = []
        for i, fitness in enumerate((3.0, 5.0)):
            c = Candidate(run_id=run.id, iteration_id=it.id, index=i, origin="offline", code="x", status="trained")
            c.fitness = fitness
            s.add(c)
            s.flush()
            out = api.settings.data_dir / "artifacts" / f"candidate-{c.id}"
            out.mkdir(parents=True)
            (out / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
            s.add(Training(candidate_id=c.id, run_id=run.id, purpose="full", timesteps=2048, status="ok", result={}))
            s.flush()
            c.trainings[-1].artifacts_key = f"candidate-{c.id}"
            ids.append(c.id)
        run.best_candidate_id = ids[1]
        return run.id, ids


def test_choosing_the_best_of_a_group_continues_the_run(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    run_id, (low, high) = waiting_for_choice(api, "alice")
    assert "Watch and choose" in browser.client.get(f"/runs/{run_id}").text
    page = browser.client.get(f"/runs/{run_id}/choose")
    assert page.status_code == 200 and page.text.count("<video") == 2 and "Which one does it best?" in page.text
    # the videos load through the dashboard's own routes (the API takes no cookie)
    assert f'src="/candidates/{low}/artifacts/' in page.text and 'src="/api/v1/' not in page.text
    src = re.search(rf'src="(/candidates/{low}/artifacts/[^"]+)"', page.text)
    assert src is not None
    video = browser.client.get(src.group(1))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    r = browser.post(f"/runs/{run_id}/choose", {"group": [str(low), str(high)], "best": str(high + 99)})
    assert r.status_code == 422 and "choose the best of the group" in r.text
    said = "It keeps its <i>back</i> level."
    r = browser.post(f"/runs/{run_id}/choose", {"group": [str(low), str(high)], "best": str(low), "text": said})
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run_id}"
    assert api.dispatcher.calls[-1] == ("resume", run_id)
    with session_scope(api.sf) as s:
        run = s.get(Run, run_id)
        assert run.status == "running" and run.best_candidate_id == low
    html = browser.client.get(f"/runs/{run_id}").text
    assert "Choices" in html and "It keeps its &lt;i&gt;back&lt;/i&gt; level." in html
    assert "chosen by people: score 0.528" in html
    assert browser.client.get(f"/runs/{run_id}/choose", follow_redirects=False).status_code == 303
    with session_scope(api.sf) as s:
        assert s.scalar(select(Task.selection).where(Task.id == s.get(Run, run_id).task_id)) == "human"


def test_none_of_these_is_right_is_recorded_with_its_sentence_and_feeds_the_next_prompt(
    db_sf: sessionmaker, tmp_path: Path
) -> None:
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    run_id, (low, high) = waiting_for_choice(api, "alice")
    group = {"group": [str(low), str(high)], "none_right": "1", "best": str(low)}
    r = browser.post(f"/runs/{run_id}/choose", group)
    assert r.status_code == 422 and "say in a sentence what none of them does right" in r.text
    said = "They all <b>crawl</b>; it should hop."
    r = browser.post(f"/runs/{run_id}/choose", group | {"text": said})
    assert r.status_code == 303 and api.dispatcher.calls[-1] == ("resume", run_id)
    with session_scope(api.sf) as s:
        [choice] = s.scalars(select(SelectionChoice)).all()
        assert choice.none_right and choice.text == said and choice.best_id == high  # the fitness picks who goes on
        [feedback] = pending_feedback(s, run_id=run_id)
        assert feedback.text == f"None of these is right: {said}"
        assert s.get(Run, run_id).best_candidate_id == high  # no one beat anyone: the scores come from no outcome
    html = browser.client.get(f"/runs/{run_id}").text
    assert "They all &lt;b&gt;crawl&lt;/b&gt;; it should hop." in html and "<b>crawl</b>" not in html
    headers = {"Authorization": f"Bearer {api.tokens['alice']}"}
    body = api.client.get(f"/api/v1/runs/{run_id}/comparisons", headers=headers).json()
    assert body["choices"][0]["none_right"] is True
