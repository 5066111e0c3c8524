"""The candidate page shows the learner's statistics beside the reward components; the new-task form takes PPO
hyperparameters through the same schema as the API and the CLI."""

from __future__ import annotations

import copy
import re

from sqlalchemy import select

from app.db import session_scope
from app.db.models import Task, Training
from tests.app.api.harness import Api, seed_finished_run
from tests.app.dashboard.harness import TASK_FORM, Browser, log_in


def signed_in(api: Api, name: str = "alice") -> Browser:
    api.user(name)
    return log_in(api, name)


def cells(page: str, stat: str) -> list[str]:
    """The learner table's row of ``stat``: its cells' text (tags stripped)."""
    row = re.search(rf"<tr><td><strong>{stat}</strong>.*?</tr>", page, re.S)
    assert row, f"no row for {stat}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(0), re.S)]


def test_the_candidate_page_shows_a_table_of_the_learners_statistics(api: Api) -> None:
    browser = signed_in(api)
    seeded = seed_finished_run(api, owner="alice")
    page = browser.client.get(f"/candidates/{seeded.candidate_id}").text
    assert "The learner (SB3 PPO)" in page
    kl = cells(page, "approx_kl")
    assert kl[0].startswith("approx_kl") and "how far each update moved the policy" in kl[0]
    assert kl[2:] == ["0.004", "0.006", "0.004", "0.006"]  # first, last, min, max
    assert cells(page, "explained_variance")[2:] == ["-0.8", "0.4", "-0.8", "0.4"]
    assert 'aria-label="explained_variance from -0.8 to 0.4 over training"' in page  # its sparkline
    assert "What the diagnostics point at: the reward: the learner trained normally" in page
    assert page.index("reward components") < page.index("The learner (SB3 PPO)") < page.index(">Reflection<")


def test_a_learner_problem_is_flagged_on_the_page(api: Api) -> None:
    browser = signed_in(api)
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        t = s.get(Training, seeded.training_id)
        result = copy.deepcopy(t.result)
        for cp in result["checkpoints"]:
            cp["learner"]["approx_kl"] = 150.0  # an exploding update
        t.result = result
        t.candidate.diagnostics = {"items": [{"kind": "learner_diverged", "text": "the learner diverged: ..."}]}
    page = browser.client.get(f"/candidates/{seeded.candidate_id}").text
    assert '<p class="warn">What the diagnostics point at: a learner problem, not necessarily the reward' in page
    assert "the reward may be fine; the learner diverged (learner_diverged)" in page


def test_a_candidate_without_learner_statistics_says_so(api: Api) -> None:
    browser = signed_in(api)
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        t = s.get(Training, seeded.training_id)
        result = copy.deepcopy(t.result)
        for cp in result["checkpoints"]:
            del cp["learner"]
        t.result = result
    page = browser.client.get(f"/candidates/{seeded.candidate_id}").text
    assert "No learner statistics: its training recorded none." in page and "<strong>approx_kl</strong>" not in page


def test_the_form_takes_rl_zoo_hyperparameters_and_refuses_bad_ones_naming_the_key(api: Api) -> None:
    browser = signed_in(api)
    text = 'n_steps: 256\nbatch_size: 512\nlearning_rate: lin_3e-4\npolicy_kwargs: "dict(activation_fn=nn.ReLU)"\n'
    r = browser.post("/tasks/new", {**TASK_FORM, "hyperparams": text})
    assert r.status_code == 303, r.text
    with session_scope(api.sf) as s:
        [task] = s.scalars(select(Task)).all()
        ppo = task.options["train"]["ppo"]
    assert (ppo["n_steps"], ppo["batch_size"], ppo["learning_rate"]) == (256, 512, "lin_3e-4")
    assert ppo["policy_kwargs"]["activation_fn"] == "relu"

    bad = browser.post("/tasks/new", {**TASK_FORM, "hyperparams": "batch_size: 300\n"})
    assert bad.status_code == 422
    assert "options.train.ppo.batch_size" in bad.text and "batch_size 300 must divide the rollout" in bad.text
    assert "batch_size: 300" in bad.text, "the form keeps what was typed"
    hostile = browser.post("/tasks/new", {**TASK_FORM, "hyperparams": 'learning_rate: "<script>alert(1)</script>"'})
    assert hostile.status_code == 422 and "<script>alert(1)" not in hostile.text
    assert "&lt;script&gt;alert(1)" in hostile.text
    with session_scope(api.sf) as s:
        assert len(s.scalars(select(Task)).all()) == 1
