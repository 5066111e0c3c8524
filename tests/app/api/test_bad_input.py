"""JSON no answer can carry, or no database can store, is a 422 that says what is wrong: NaN and Infinity, lone
surrogates, NUL characters, structures nested hundreds deep. The 422 never echoes the input back."""

from __future__ import annotations

import json

import pytest

from tests.app.api.harness import API, Api, seed_finished_run
from tests.support.tasks import TINY

BODY = json.dumps(TINY)


def post(api: Api, path: str, headers: dict, raw: str | bytes):
    content = raw.encode() if isinstance(raw, str) else raw
    return api.client.post(f"{API}{path}", headers={**headers, "Content-Type": "application/json"}, content=content)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (BODY.replace('"iterations": 1', '"iterations": NaN'), "finite"),
        (BODY.replace('"iterations": 1', '"iterations": -Infinity'), "finite"),
        (BODY.replace('"final_seeds": 0', '"screen_fraction": NaN, "final_seeds": 0'), "finite"),
        (BODY.replace("run forward", "run \\ud800 forward"), "lone surrogate"),
        (BODY.replace('"iterations": 1', '"iterations": "\\udfff"'), "lone surrogate"),
        (BODY.replace('"options": {', '"options": {"\\ud800": 1, '), "lone surrogate"),
        (BODY.replace("run forward", "run \\u0000 forward"), "NUL"),
        (BODY.replace('"checkpoints": 2', '"ppo": ' + "[" * 900 + "]" * 900), "nests deeper"),
        (BODY.replace('"iterations": 1', '"iterations": ' + "[" * 900 + "]" * 900), "nests deeper"),
    ],
)
def test_unstorable_json_is_422(api: Api, raw: str, says: str) -> None:
    alice = api.user("alice")
    r = post(api, "/tasks", alice, raw)
    assert r.status_code == 422, r.text[:300]
    assert says in r.json()["error"]["message"]
    assert api.client.get(f"{API}/tasks", headers=alice).json() == []


def test_the_422_names_the_field_but_never_echoes_the_input(api: Api) -> None:
    alice = api.user("alice")
    secretish = "x" * 5000
    r = post(api, "/tasks", alice, BODY.replace('"iterations": 1', f'"iterations": "{secretish}"'))
    assert r.status_code == 422 and r.json()["error"]["field"] == "iterations"
    assert secretish not in r.text and len(r.text) < 2000
    assert all(set(d) == {"type", "loc", "msg"} for d in r.json()["detail"])
    undecodable = api.client.post(f"{API}/tasks", headers=alice, content=b'{"env": "\xff"}')  # no content type
    assert undecodable.status_code in (400, 422), undecodable.text


def test_feedback_with_unstorable_text_is_422(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    for raw in ('{"text": "\\ud83d"}', '{"text": "a\\u0000b"}', '{"text": "ok", "rating": NaN}'):
        r = post(api, f"/candidates/{seeded.candidate_id}/feedback", alice, raw)
        assert r.status_code == 422, (raw, r.text)
    feedback = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["feedback"]
    assert len(feedback) == 1
