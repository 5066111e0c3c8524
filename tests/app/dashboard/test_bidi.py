"""Bidi controls and other invisible control characters in user and program text are shown escaped on every
dashboard page (one Jinja ``finalize`` for every printed value): a U+202E in a task's description, a feedback, a
program's comment or an error cannot turn the text after it around ("Trojan Source") or hide it."""

from __future__ import annotations

from sqlalchemy import update

from app.db import session_scope
from app.db.models import Candidate
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import TASK_FORM, log_in
from tests.support.tasks import TINY

RLO, RLI, ESC = "\u202e", "\u2067", "\x1b"
CODE = (
    "import numpy as np\n\n\ndef compute_reward(state, action):\n"
    f'    """Reward forward speed."""  # {RLO} }} ⁦// check the speed\n'
    "    return float(state.x_velocity[0]), {'forward': float(state.x_velocity[0])}\n"
)


def test_bidi_controls_are_shown_escaped_on_every_page(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    task = {**TINY, "description": f"make the cheetah run {RLO}sdrawkcab{ESC}[2J"}
    other = api.client.post(f"{API}/tasks", json=task, headers=alice).json()
    with session_scope(api.sf) as s:
        s.execute(
            update(Candidate)
            .where(Candidate.id == seeded.candidate_id)
            .values(code=CODE, reflection=f"forward {RLI}dominates")
        )
        s.execute(update(Candidate).where(Candidate.id == seeded.rejected_id).values(error=f"line 1: {RLO}gnorw"))
    assert api.client.post(
        f"{API}/candidates/{seeded.candidate_id}/feedback", json={"text": f"looks {RLO}doog"}, headers=alice
    ).is_success
    browser = log_in(api, "alice")
    pages = {
        "runs": browser.client.get("/"),
        "runs table": browser.htmx("GET", "/ui/runs-table"),
        "run": browser.client.get(f"/runs/{other['run_id']}"),
        "finished run": browser.client.get(f"/runs/{seeded.run_id}"),
        "candidate": browser.client.get(f"/candidates/{seeded.candidate_id}"),
        "rejected": browser.client.get(f"/candidates/{seeded.rejected_id}"),
        "compare": browser.client.get(f"/compare?a={seeded.candidate_id}&b={seeded.rejected_id}"),
        "form again": browser.post("/tasks/new", {**TASK_FORM, "description": f"{RLO}x", "iterations": "0"}),
    }
    for name, page in pages.items():
        assert page.status_code in (200, 422), (name, page.status_code)
        for hidden in (RLO, RLI, ESC):
            assert hidden not in page.text, f"{name} shows {hidden!r} raw"
    assert "run \\u202esdrawkcab\\x1b[2J" in pages["runs"].text
    assert "\\u202e" in pages["candidate"].text and "\\u2067" in pages["candidate"].text  # code and reflection
    assert "looks \\u202edoog" in pages["candidate"].text
    assert "line 1: \\u202egnorw" in pages["rejected"].text
    assert 'value="\\u202ex"' in pages["form again"].text or "\\u202ex</textarea>" in pages["form again"].text


def test_ordinary_text_is_shown_as_it_is(api: Api) -> None:
    alice = api.user("alice")
    task = {**TINY, "description": "make the cheetah run — vite, très vite\tnow 🐆 (日本語)"}
    run_id = api.client.post(f"{API}/tasks", json=task, headers=alice).json()["run_id"]
    page = log_in(api, "alice").client.get(f"/runs/{run_id}")
    assert "make the cheetah run — vite, très vite\tnow 🐆 (日本語)" in page.text
