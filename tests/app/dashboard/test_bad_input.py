"""Whatever a person (or a script) types into the dashboard's forms, the answer is a 4xx page or fragment that
says what was wrong, never a server error; nothing is stored."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.db.models import Feedback, Task
from tests.app.api.harness import Api, seed_finished_run
from tests.app.dashboard.harness import TASK_FORM, log_in


def count(api: Api, model) -> int:
    with session_scope(api.sf) as s:
        return s.scalar(select(func.count(model.id)))


def test_bad_feedback_ratings_are_422_with_a_message(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    browser = log_in(api, "alice")
    before = count(api, Feedback)
    for rating, says in (("abc", "whole number"), ("9" * 400, "too large"), ("7", "from 1 to 5"), ("1.5", "whole")):
        r = browser.post(f"/candidates/{seeded.candidate_id}/feedback", {"text": "fine", "rating": rating})
        assert r.status_code == 422, (rating, r.status_code)
        assert says in r.text and "Feedback" in r.text, rating
    assert count(api, Feedback) == before


def test_bad_task_forms_are_422_pages_that_keep_the_input(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    for change, says in (
        ({"seed": str(2**70)}, "Seed is too large"),
        ({"seed": "-" + "9" * 400}, "Seed is too large"),
        ({"iterations": "abc"}, "Iterations must be a whole number"),
        ({"timesteps": "１２"}, "Timesteps must be a whole number"),  # full-width digits
        ({"env": "Nope-v0"}, "unknown env"),
        ({"env": "<img src=x onerror=alert(1)>"}, "unknown env"),
    ):
        r = browser.post("/tasks/new", {**TASK_FORM, **change})
        assert r.status_code == 422, (change, r.status_code)
        assert says in r.text, (change, r.text[:300])
        assert 'name="description"' in r.text and "make the cheetah run forward" in r.text
        assert "<img src=x" not in r.text
    assert count(api, Task) == 0


def test_uploaded_files_are_not_form_fields(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    r = browser.client.post(
        "/tasks/new",
        data={**{k: v for k, v in TASK_FORM.items() if k != "description"}, "csrf_token": browser.csrf},
        files={"description": ("d.txt", b"make the cheetah run forward")},
        headers={"Origin": "http://testserver"},
    )
    assert r.status_code == 422 and "describe the behaviour" in r.text
    assert count(api, Task) == 0


def test_the_compute_estimate_answers_any_number(api: Api) -> None:
    api.user("alice")
    browser = log_in(api, "alice")
    for params in (
        {"iterations": "9" * 400, "samples": "1", "timesteps": "1", "final_seeds": "0"},
        {"iterations": "abc"},
        {"iterations": "2147483647", "samples": "2147483647", "timesteps": "2147483647", "final_seeds": "10"},
    ):
        r = browser.htmx("GET", "/ui/compute", params=params)
        assert r.status_code == 200, params
        # an estimate answers with the rule the service would refuse the task by, never a 500
        assert 'class="error"' in r.text, params
        assert any(w in r.text for w in ("whole number", "too large", "less than or equal to 50", "cap")), r.text


def test_text_no_database_can_store_is_422(api: Api) -> None:
    """PostgreSQL refuses NUL characters in text: they are refused before they reach it, in forms and filters."""
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    browser = log_in(api, "alice")
    r = browser.post(f"/candidates/{seeded.candidate_id}/feedback", {"text": "fine\x00"})
    assert r.status_code == 422 and "NUL" in r.text
    r = browser.post("/tasks/new", {**TASK_FORM, "description": "run\x00"})
    assert r.status_code == 422 and "NUL" in r.text, r.text
    assert count(api, Task) == 1  # the seeded one
    for query in ({"q": "a\x00"}, {"env": "\x00"}, {"status": "\x00"}):
        assert browser.client.get("/", params=query).status_code == 422, query
        assert browser.htmx("GET", "/ui/runs-table", params=query).status_code == 422, query
