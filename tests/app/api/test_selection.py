"""Human selection through the REST API, with real trainings: the run waits after each iteration, takes a person's
choices between the candidates' videos, and the chosen candidate is the next parent whatever its fitness.

The app's dispatcher is the in-process one `rewardsmith run` uses (real sandboxed PPO on a tiny budget, videos
included), on SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Feedback, Iteration
from app.main import create_app
from app.search.machine.factory import designer_factory
from app.search.machine.local import LocalDispatcher
from tests.app.api.harness import API, Api
from tests.support.db import make_settings
from tests.support.tasks import TINY

pytestmark = pytest.mark.slow

HUMAN = TINY | {
    "description": "make the cheetah run backwards",
    "fitness": "backward_distance",
    "selection": "human",
    "iterations": 2,
    "samples": 2,
    "options": TINY["options"] | {"train": TINY["options"]["train"] | {"video_steps": 20}},
}
SAID = "It runs backwards with long strides; keep that."


@pytest.fixture
def served(sqlite_sf: sessionmaker, tmp_path: Path) -> tuple[Api, LocalDispatcher]:
    settings = make_settings(tmp_path)
    dispatcher = LocalDispatcher(sqlite_sf, settings, designer_factory(sqlite_sf, settings), max_parallel=2)
    app = create_app(settings, dispatcher=dispatcher, broker_check=lambda: "ok")
    app.state.sf = sqlite_sf
    return Api(app, TestClient(app), sqlite_sf, settings, dispatcher), dispatcher  # type: ignore[arg-type]


def test_a_human_selection_run_takes_choices_and_the_chosen_candidate_is_the_next_parent(served) -> None:
    api, dispatcher = served
    alice = api.user("alice")
    run_id = api.client.post(f"{API}/tasks", json=HUMAN, headers=alice).json()["run_id"]
    assert dispatcher.run_until_settled(run_id, poll=0.2) == "waiting_feedback"

    # After iteration 1: its two trained candidates, side by side, with their videos and fitness.
    comparisons = api.client.get(f"{API}/runs/{run_id}/comparisons", headers=alice).json()
    assert comparisons["status"] == "waiting_feedback" and comparisons["choices"] == []
    [group] = comparisons["pending"]
    assert (group["iteration"], group["round"], len(group["candidates"])) == (1, 0, 2)
    for c in group["candidates"]:
        assert c["video_url"].endswith("/video.mp4") and c["fitness"] is not None and not c["incumbent"]
        assert api.client.get(c["video_url"], headers=alice).headers["content-type"] == "video/mp4"
    # The person prefers the one with the lower fitness: their choice wins.
    low, high = sorted(group["candidates"], key=lambda c: c["fitness"])
    ids = [c["id"] for c in group["candidates"]]
    res = api.client.post(
        f"{API}/runs/{run_id}/choices", json={"group": ids, "best": low["id"], "text": SAID}, headers=alice
    )
    assert res.status_code == 201, res.text
    after = res.json()
    assert after["status"] == "running" and after["pending"] == [] and after["best_candidate_id"] == low["id"]
    [choice] = after["choices"]
    assert choice["chosen_by"] == "alice" and choice["best_id"] == low["id"] and choice["text"] == SAID
    assert choice["scores"][str(low["id"])] > choice["scores"][str(high["id"])]
    again = api.client.post(f"{API}/runs/{run_id}/choices", json={"group": ids, "best": high["id"]}, headers=alice)
    assert again.status_code == 409

    # Iteration 2 starts from the chosen candidate, and its prompt context carries the sentence.
    assert dispatcher.run_until_settled(run_id, poll=0.2) == "waiting_feedback"
    with session_scope(api.sf) as s:
        second = s.scalar(select(Iteration).where(Iteration.run_id == run_id, Iteration.index == 1))
        assert second.parent_id == low["id"]
        assert [f["text"] for f in second.context["feedback"]] == [SAID]
        assert s.scalar(select(Feedback.used_in_iteration).where(Feedback.text == SAID)) == 1

    # After iteration 2: the parent is compared with the new candidates; a whole ranking is taken too.
    [group] = api.client.get(f"{API}/runs/{run_id}/comparisons", headers=alice).json()["pending"]
    assert [c["incumbent"] for c in group["candidates"]] == [True, False, False]
    parent, first, newest = (c["id"] for c in group["candidates"])
    assert parent == low["id"]
    wrong = api.client.post(f"{API}/runs/{run_id}/choices", json={"group": [parent, first]}, headers=alice)
    assert wrong.status_code == 422 and "is not a group that waits for a choice" in wrong.json()["error"]["message"]
    res = api.client.post(
        f"{API}/runs/{run_id}/choices",
        json={"group": [parent, first, newest], "ranking": [newest, parent, first]},
        headers=alice,
    )
    assert res.status_code == 201, res.text
    scores = res.json()["scores"]
    assert scores[str(newest)] > scores[str(parent)] > scores[str(first)]
    assert scores[str(parent)] > scores[str(high["id"])]
    assert dispatcher.run_until_settled(run_id, poll=0.2) == "succeeded"
    run = api.client.get(f"{API}/runs/{run_id}", headers=alice).json()
    assert run["best_candidate_id"] == newest and run["final"]["best_candidate_id"] == newest
