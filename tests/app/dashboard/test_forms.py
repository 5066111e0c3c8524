"""The dashboard's task form goes through the same rules as the API: rate limit, bounds, the whole budget."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Task
from tests.app.api.harness import API, Api, make_api
from tests.app.dashboard.harness import TASK_FORM, Browser, log_in
from tests.support.tasks import TINY


def signed_in(api: Api, name: str) -> Browser:
    """A browser with the dashboard session of a new user ``name``."""
    api.user(name)
    return log_in(api, name)


def tasks_of(api: Api) -> int:
    with session_scope(api.sf) as s:
        return int(s.scalar(select(func.count(Task.id))) or 0)


def test_the_eleventh_task_in_a_minute_is_refused_through_the_form_as_through_the_api(
    db_sf: sessionmaker, tmp_path: Path
) -> None:
    api = make_api(db_sf, tmp_path, task_rate_per_minute=10)
    browser = signed_in(api, "alice")
    codes = [browser.post("/tasks/new", TASK_FORM).status_code for _ in range(10)]
    assert codes == [303] * 10
    r = browser.post("/tasks/new", TASK_FORM)
    assert r.status_code == 429
    assert "at most 10 tasks per minute" in r.text
    assert tasks_of(api) == 10
    # and the API counts the same tasks: the limit is one rule, not one per entry point
    bearer = {"Authorization": f"Bearer {api.tokens['alice']}"}
    assert api.client.post(f"{API}/tasks", headers=bearer, json=TINY).status_code == 429


def test_the_form_refuses_a_budget_that_only_its_final_seeds_put_over_the_cap(db_sf: sessionmaker, tmp_path) -> None:
    api = make_api(db_sf, tmp_path, max_task_timesteps=10_000)
    browser = signed_in(api, "alice")
    over = {**TASK_FORM, "iterations": "2", "samples": "2", "timesteps": "2000", "final_seeds": "2"}  # 8,000 + 4,000
    r = browser.post("/tasks/new", over)
    assert r.status_code == 422
    assert "12,000 steps" in r.text and "2 final seeds 4,000" in r.text and "cap of 10,000" in r.text
    assert tasks_of(api) == 0


def test_the_estimate_shows_the_numbers_the_service_enforces(db_sf: sessionmaker, tmp_path) -> None:
    browser = signed_in(make_api(db_sf, tmp_path, max_task_timesteps=10_000, train_steps_per_second=1000.0), "alice")
    fits = browser.client.get(
        "/ui/compute", params={**TASK_FORM, "iterations": "2", "samples": "2", "timesteps": "2000"}
    )
    assert fits.status_code == 200
    assert "8,000" in fits.text and "4 trainings" in fits.text and "1,000 steps/s" in fits.text
    over = browser.client.get(
        "/ui/compute", params={**TASK_FORM, "iterations": "2", "samples": "2", "timesteps": "2000", "final_seeds": "2"}
    )
    assert "12,000" in over.text and "above the cap of 10,000" in over.text
    bad = browser.client.get("/ui/compute", params={**TASK_FORM, "samples": "9" * 400})
    assert bad.status_code == 200 and "Candidates per iteration is too large" in bad.text


def test_the_form_carries_the_warm_start_and_the_screen_ticked_by_default(db_sf: sessionmaker, tmp_path) -> None:
    """Both are on by default (as in the API and the CLI); unticking either turns it off for that task only."""
    api = make_api(db_sf, tmp_path)
    browser = signed_in(api, "alice")
    page = browser.client.get("/tasks/new")
    for name in ("continue_from_parent", "trajectory_screen"):
        assert f'name="{name}" checked' in page.text, name
    unticked = {k: v for k, v in TASK_FORM.items() if k not in ("continue_from_parent", "trajectory_screen")}
    assert browser.post("/tasks/new", TASK_FORM).status_code == 303
    assert browser.post("/tasks/new", unticked).status_code == 303
    with session_scope(api.sf) as s:
        options = [t.options for t in s.scalars(select(Task).order_by(Task.id))]
    assert [(o["continue_from_parent"], o["trajectory_screen"]) for o in options] == [(True, True), (False, False)]
