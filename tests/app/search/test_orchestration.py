"""The search as a state machine in the database: states, successive halving, feedback, cancel and resume, baselines."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Feedback, Iteration, Run, Training
from app.errors import Conflict, InvalidInput
from app.search.machine import finish, iterations, lifecycle, steps, training
from app.search.records.runs import set_status
from app.search.rules.options import TaskOptions, parse_options
from app.search.rules.states import RUN_TRANSITIONS, IllegalTransition, RunStatus, check_transition
from app.search.rules.task import columns
from app.search.service import LocalRun, TaskSpec, add_feedback, cancel_run, create_task, resume_run, task_budget
from tests.app.search.harness import Search, design_requests, task_spec, user_prompt
from tests.support.db import make_settings
from tests.support.dispatch import RecordingDispatcher as Recorder
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fixtures import load_fixture


def offline_settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


# ------------------------------------------------------------------------------------------ the state machine


@pytest.mark.parametrize("current, target", list(itertools.product(RunStatus, RunStatus)))
def test_only_the_listed_transitions_are_legal(current: str, target: str) -> None:
    if target in RUN_TRANSITIONS[current]:
        check_transition("run 5", current, target)
    else:
        with pytest.raises(IllegalTransition) as e:
            check_transition("run 5", current, target)
        assert e.value.status_code == 409 and isinstance(e.value, Conflict)
        assert str(e.value).startswith(f"cannot move run 5 from '{current}' to '{target}'; ")


def test_an_illegal_transition_says_where_the_run_can_go() -> None:
    with pytest.raises(IllegalTransition, match="from 'succeeded' it can go to: running"):
        check_transition("run 5", "succeeded", "failed")
    with pytest.raises(IllegalTransition, match="from 'queued' it can go to: cancelled, failed, running"):
        check_transition("run 5", "queued", "waiting_feedback")


def test_service_steps_follow_the_state_machine(db_sf, tmp_path) -> None:
    settings = offline_settings(tmp_path)
    recorder = Recorder()
    with session_scope(db_sf) as s:
        _, run = create_task(
            s, spec=task_spec(designer="offline"), owner_id=None, settings=settings, dispatcher=recorder
        )
        run_id = run.id
        assert run.status == "queued"
    assert recorder.calls == [("start", run_id)]  # only once the task was committed
    with session_scope(db_sf) as s:
        run = s.get(Run, run_id)
        with pytest.raises(Conflict, match="is queued: it starts by itself"):
            resume_run(s, run=run, dispatcher=recorder)  # queued: nothing to resume
        set_status(run, "running")
        assert run.started_at is not None and run.finished_at is None
        with pytest.raises(IllegalTransition):
            resume_run(s, run=run, dispatcher=recorder)  # already running
        cancel_run(s, run=run)
        assert run.status == "cancelled" and run.finished_at is not None
    with session_scope(db_sf) as s:
        resume_run(s, run=s.get(Run, run_id), dispatcher=recorder)
    assert recorder.calls[-1] == ("resume", run_id)
    with session_scope(db_sf) as s:
        run = s.get(Run, run_id)
        assert run.status == "running" and run.finished_at is None
        set_status(run, "succeeded")
    with session_scope(db_sf) as s:
        run = s.get(Run, run_id)
        with pytest.raises(IllegalTransition, match="from 'succeeded' it can go to: running"):
            cancel_run(s, run=run)
        with pytest.raises(Conflict, match="continue it for more iterations"):
            resume_run(s, run=run, dispatcher=recorder)
        assert run.status == "succeeded"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"env": "Cheetah-v9"}, "env", "Cheetah-v9"),
        ({"description": "   "}, "description", "describe the behaviour in words"),
        ({"fitness": "speed"}, "fitness", "unknown fitness 'speed': give a built-in metric"),
        (
            {"fitness": "import os\ndef compute_fitness(traj):\n    return 0.0\n"},
            "fitness",
            "importing `os` is not allowed",
        ),
        ({"samples": 0}, "samples", "samples: Input should be greater than or equal to 1"),
        ({"timesteps": 10}, "timesteps", "timesteps: Input should be greater than or equal to 1000"),
        ({"timesteps": 6_000_000}, "timesteps", "timesteps must be an integer from 1,000 to 5,000,000"),
        ({"designer": "gpt"}, "designer", "designer: Input should be 'llm' or 'offline'"),
        ({"designer": "llm"}, "designer", "set REWARDSMITH_LLM_MODEL and OPENAI_BASE_URL"),
        ({"seed": 2**70}, "seed", "seed: Input should be less than or equal to 2147483647"),
        ({"seed": -1}, "seed", "seed: Input should be greater than or equal to 0"),
        ({"turbo": True}, "turbo", "unknown field turbo; known here: env, description, fitness"),
        ({"options": {"halving": True}}, "options.halving", "unknown option options.halving; known here: successive"),
        (
            {"options": {"train": {"eval_episodes": 1, "epochs": 3}}},
            "options.train.epochs",
            "unknown option options.train.epochs; known here: eval_episodes",
        ),
        ({"options": {"screen_fraction": 0.95}}, "options.screen_fraction", "less than or equal to 0.9"),
        # the train options are a schema with bounds, not an untyped dict
        ({"options": {"train": {"eval_episodes": "abc"}}}, "options.train.eval_episodes", "valid integer"),
        ({"options": {"train": {"eval_episodes": 10**6}}}, "options.train.eval_episodes", "less than or equal to 100"),
        ({"options": {"train": {"checkpoints": 10**9}}}, "options.train.checkpoints", "less than or equal to 50"),
        ({"options": {"train": {"video_steps": 10**9}}}, "options.train.video_steps", "less than or equal to 1000"),
        ({"options": {"train": {"ppo": {"n_envs": 10**6}}}}, "options.train.ppo.n_envs", "less than or equal to 256"),
        ({"options": {"train": {"ppo": {"lr": 1}}}}, "options.train.ppo.lr", "known here: n_envs, n_steps"),
    ],
)
def test_a_bad_task_is_refused_with_the_field_and_what_to_do(tmp_path, change, field, words) -> None:
    """Bounds of the spec itself are refused when it is made, the rest when its columns are (``create_task``)."""
    raw = task_spec(designer="offline").model_dump() | change
    with pytest.raises(InvalidInput) as e:
        columns(TaskSpec.parse(raw), offline_settings(tmp_path))
    assert e.value.field == field and words in e.value.message


def test_the_total_budget_counts_baselines_and_final_seeds_and_shows_the_arithmetic(tmp_path) -> None:
    settings = make_settings(tmp_path, max_task_timesteps=160_000)
    spec = TaskSpec(env="Hopper-v5", description="hop", designer="offline", iterations=3, samples=4, timesteps=10_000)
    # the search alone (120,000) fits; its two baselines, three final seeds (the best and the reference reward
    # re-trained on each) and the reference trained on to a 3-iteration lineage's steps on each final seed do not
    # (10,000 + 2 warm children of 5,000 each by the default warm_start_budget: 10,000 more on each of 3 seeds)
    with pytest.raises(InvalidInput) as e:
        columns(spec, settings)
    assert e.value.field == "timesteps"
    assert (
        "would train 230,000 steps (search 120,000 = 3 iterations × 4 samples × 10,000 steps + 2 baselines 20,000 "
        "+ 3 final seeds × 2 (best and reference) 60,000 + reference to the lineage's steps at most 30,000), above "
        "the cap of 160,000" in e.value.message
    )
    cold = spec.model_copy(update={"options": TaskOptions(continue_from_parent=False)})
    with pytest.raises(InvalidInput) as e:  # no warm starts: no lineage for the reference to match
        columns(cold, settings)
    assert "would train 200,000 steps" in e.value.message and "lineage" not in e.value.message
    spec = spec.model_copy(update={"options": TaskOptions(baselines=False, final_seeds=0)})
    assert columns(spec, settings)["options"]["final_seeds"] == 0


def test_successive_halving_counts_screening_and_the_continued_half(tmp_path) -> None:
    spec = TaskSpec(
        env="HalfCheetah-v5",
        description="run",
        designer="offline",
        iterations=2,
        samples=4,
        timesteps=40_000,
        options={"successive_halving": True, "screen_fraction": 0.25, "final_seeds": 1, "baselines": False},
    )
    budget = task_budget(spec, offline_settings(tmp_path))
    # per iteration: 4 screenings of 10,000, then the better 2 continue by 30,000 each
    assert (budget.search_trainings, budget.search_steps) == (12, 2 * (4 * 10_000 + 2 * 30_000))
    assert (budget.final_trainings, budget.timesteps) == (1, 200_000 + 40_000)


def test_without_an_llm_the_offline_designer_is_chosen_and_options_get_defaults(tmp_path) -> None:
    values = columns(TaskSpec(env="Hopper-v5", description="hop forward"), offline_settings(tmp_path))
    assert values["designer"] == "offline" and values["fitness_name"] == "forward_distance"
    assert values["options"]["final_seeds"] == 3 and values["options"]["baselines"] is True


# ------------------------------------------------------------------------------- iteration bookkeeping (no PPO)


def _running_iteration(
    s, tmp_path, recorder: Recorder, *, index: int, status: str, **spec: Any
) -> tuple[Run, Iteration]:
    """A running offline run of 2 iterations (``spec`` changes the rest) with its iteration ``index`` in ``status``."""
    _, run = create_task(
        s,
        spec=task_spec(designer="offline", iterations=2, **spec),
        owner_id=None,
        settings=offline_settings(tmp_path),
        dispatcher=recorder,
    )
    set_status(run, "running")
    it = Iteration(run=run, index=index, status=status, context={})
    s.add(it)
    s.flush()
    return run, it


def _candidate_with_training(s, run: Run, it: Iteration, i: int, state: str, **training: Any) -> Candidate:
    """Candidate ``i`` of ``it`` in ``state``, with one training (``training``: its columns); a candidate that
    trained has fitness 1 + i, and so has its training's result."""
    fitness = 1.0 + i if state in ("trained", "screened") else None
    c = Candidate(run_id=run.id, iteration_id=it.id, index=i, origin="offline", code="x", status=state)
    c.fitness = fitness
    s.add(c)
    s.flush()
    result = {"fitness": {"mean": fitness, "std": 0.0}} if fitness is not None else {}
    s.add(Training(candidate_id=c.id, run_id=run.id, seed=0, result=result, **training))
    return c


def _iteration_with(sf, tmp_path, statuses: list[str]) -> tuple[int, int, Recorder]:
    """A running run whose first iteration has one full training per status."""
    recorder = Recorder()
    with session_scope(sf) as s:
        run, it = _running_iteration(s, tmp_path, recorder, index=0, status="training", samples=len(statuses))
        for i, status in enumerate(statuses):
            trained = "trained" if status == "ok" else "queued"
            _candidate_with_training(s, run, it, i, trained, purpose="full", timesteps=2048, status=status)
        return run.id, it.id, recorder


def test_an_iteration_with_a_cancelled_training_stays_open_until_the_training_is_redone(sqlite_sf, tmp_path) -> None:
    run_id, it_id, recorder = _iteration_with(sqlite_sf, tmp_path, ["ok", "cancelled"])
    settings = offline_settings(tmp_path)
    iterations.advance(sqlite_sf, it_id, recorder, settings)
    with session_scope(sqlite_sf) as s:
        assert s.get(Iteration, it_id).status == "training"
        assert s.get(Run, run_id).best_candidate_id is None
    assert ("design", run_id) not in recorder.calls
    lifecycle.resume(sqlite_sf, run_id, recorder, settings)  # what a resume does
    with session_scope(sqlite_sf) as s:
        cancelled = s.scalars(select(Training).where(Training.run_id == run_id).order_by(Training.id)).all()[1]
        assert cancelled.status == "queued"
    assert recorder.calls[-1] == ("train", cancelled.id)


def test_an_iteration_whose_trainings_all_ended_closes_and_the_next_is_designed(sqlite_sf, tmp_path) -> None:
    run_id, it_id, recorder = _iteration_with(sqlite_sf, tmp_path, ["ok", "ok", "failed"])
    iterations.advance(sqlite_sf, it_id, recorder, offline_settings(tmp_path))
    iterations.advance(sqlite_sf, it_id, recorder, offline_settings(tmp_path))  # a second delivery changes nothing
    with session_scope(sqlite_sf) as s:
        it = s.get(Iteration, it_id)
        assert it.status == "done" and it.finished_at is not None
        best = s.get(Candidate, s.get(Run, run_id).best_candidate_id)
        assert best.index == 1 and best.fitness == 2.0
    assert recorder.calls.count(("design", run_id)) == 1


def test_a_candidate_stopped_at_screening_does_not_beat_fully_trained_ones(sqlite_sf, tmp_path) -> None:
    """Its fitness was measured on a fraction of the budget; comparing it with full trainings would be unfair."""
    run_id, it_id, recorder = _iteration_with(sqlite_sf, tmp_path, ["ok", "ok"])
    with session_scope(sqlite_sf) as s:
        screened_only = s.scalars(
            select(Candidate).where(Candidate.iteration_id == it_id).order_by(Candidate.id)
        ).all()[1]
        screened_only.fitness = 100.0
        for t in screened_only.trainings:
            t.purpose = "screen"
    iterations.advance(sqlite_sf, it_id, recorder, offline_settings(tmp_path))
    with session_scope(sqlite_sf) as s:
        best = s.get(Candidate, s.get(Run, run_id).best_candidate_id)
        assert best.index == 0 and best.fitness == 1.0


def test_a_warm_started_child_screened_then_continued_trains_its_share_of_the_budget(sqlite_sf, tmp_path) -> None:
    """Successive halving with warm_start_budget 0.5: the continued half trains to half the task's steps when its
    screening started from the parent's policy, to the full budget when it started from scratch."""
    recorder = Recorder()
    with session_scope(sqlite_sf) as s:
        options = {"successive_halving": True, "warm_start_budget": 0.5}
        run, it = _running_iteration(
            s, tmp_path, recorder, index=1, status="screening", samples=4, timesteps=40_000, options=options
        )
        parent = Training(run_id=run.id, purpose="full", timesteps=40_000, seed=0, status="ok")
        for i in range(4):
            warm = {"warm_start_from_id": parent.id} if i == 3 else {}  # the best one started warm
            c = _candidate_with_training(
                s, run, it, i, "screened", purpose="screen", timesteps=10_000, status="ok", **warm
            )
            if i == 0:
                parent.candidate_id = c.id  # any row will do: only the link is read
                s.add(parent)
                s.flush()
        run_id, it_id = run.id, it.id
    iterations.advance(sqlite_sf, it_id, recorder, offline_settings(tmp_path))
    with session_scope(sqlite_sf) as s:
        fulls = s.scalars(
            select(Training).where(Training.run_id == run_id, Training.purpose == "full", Training.id != parent.id)
        ).all()
        by_index = {t.candidate.index: t.timesteps for t in fulls}
    assert by_index == {3: 20_000, 2: 40_000}, "the better half: the warm one to half the budget, the other to all"


def test_the_warm_start_budget_scales_what_a_warm_child_adds_and_what_the_reference_matches(tmp_path) -> None:
    from app.search.rules.budget import added_steps

    half = TaskOptions(warm_start_budget=0.5)
    assert added_steps(40_000, half, warm=True) == 20_000
    assert added_steps(40_000, half, warm=False) == 40_000  # a child without a parent's policy trains all of it
    assert added_steps(40_000, TaskOptions(warm_start_budget=0.5, continue_from_parent=False), warm=True) == 40_000
    assert added_steps(1_500, TaskOptions(warm_start_budget=0.1), warm=True) == 1_000  # the engine's least
    spec = TaskSpec(
        env="HalfCheetah-v5", description="run", designer="offline", iterations=3, samples=2, timesteps=40_000
    )
    full = task_budget(
        spec.model_copy(update={"options": TaskOptions(warm_start_budget=1.0)}), offline_settings(tmp_path)
    )
    halved = task_budget(spec, offline_settings(tmp_path))  # the default share is half
    assert spec.options == half
    # the cap still counts every search training at the full budget (a child whose parent left no policy trains
    # it all); the reference is trained on to a lineage of at most 40,000 + 2 x 20,000 steps
    assert halved.search_steps == full.search_steps == 3 * 2 * 40_000
    assert (full.lineage_steps, halved.lineage_steps) == (3 * 2 * 40_000, 3 * 2 * 20_000)
    for bad in (0.05, 1.5):
        with pytest.raises(InvalidInput, match=r"^options\.warm_start_budget: Input should be"):
            parse_options({"warm_start_budget": bad})


# ------------------------------------------------------------------------------------------- whole runs (PPO)


@pytest.mark.slow
def test_successive_halving_screens_all_and_continues_the_better_half(sqlite_sf, tmp_path) -> None:
    answers = [
        load_fixture(n) for n in ("cheetah_forward", "cheetah_forward_v2", "cheetah_helpers", "cheetah_flip_hack")
    ]
    # 8 envs × 128 steps: a PPO rollout is 1,024 steps, so a quarter of 4,096 is one rollout
    spec = task_spec(
        samples=4,
        timesteps=4096,
        options={
            "successive_halving": True,
            "screen_fraction": 0.25,
            "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2, "ppo": {"n_steps": 128}},
        },
    )
    with FakeOpenAI() as server:
        server.script(answers)
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(spec)
        assert status == "succeeded", search.doc(run_id)["error"]
    trainings = search.trainings(run_id)
    screens = [t for t in trainings if t.purpose == "screen"]
    fulls = [t for t in trainings if t.purpose == "full"]
    assert len(screens) == 4 and len(fulls) == 2 and len(trainings) == 6
    assert all(t.status == "ok" and t.timesteps == 1024 and t.result["timesteps"] == 1024 for t in screens)
    screen_fitness = {t.candidate_id: t.result["fitness"]["mean"] for t in screens}
    top_two = sorted(screen_fitness, key=screen_fitness.get, reverse=True)[:2]
    assert sorted(t.candidate_id for t in fulls) == sorted(top_two)
    for t in fulls:
        screen = next(x for x in screens if x.candidate_id == t.candidate_id)
        assert t.status == "ok" and t.resume_from_id == screen.id
        assert t.result["resumed_from_timesteps"] == 1024 and t.result["timesteps"] == 4096
    trained = sum(t.result["timesteps"] - t.result.get("resumed_from_timesteps", 0) for t in trainings)
    assert trained == 4 * 1024 + 2 * 3072 < 4 * 4096
    assert search.doc(run_id)["usage"]["timesteps_trained"] == trained
    for c in search.candidates(run_id):
        assert c["status"] == "trained"
        stopped = [n for n in c["critic"] if n["stage"] == "successive halving"]
        if c["id"] in top_two:
            assert (
                not stopped
                and c["fitness"] == next(t for t in fulls if t.candidate_id == c["id"]).result["fitness"]["mean"]
            )
        else:
            assert stopped[0]["text"] == "stopped after screening: its fitness was in the lower half"


@pytest.mark.slow
def test_a_run_waits_for_feedback_and_the_next_round_carries_it(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(iterations=2, wait_for_feedback=True))
        assert status == "waiting_feedback"
        assert [it.status for it in search.iterations(run_id)] == ["done"]
        [c] = search.candidates(run_id)
        with session_scope(search.sf) as s:
            candidate = s.get(Candidate, c["id"])
            with pytest.raises(InvalidInput, match="feedback text is empty"):
                add_feedback(s, candidate=candidate, text="  ", rating=None, user_id=None)
            with pytest.raises(InvalidInput, match="rating must be an integer from 1 to 5"):
                add_feedback(s, candidate=candidate, text="fine", rating=6, user_id=None)
            fb = add_feedback(
                s,
                candidate=candidate,
                text="It rocks on its back foot; make it stride with both legs.",
                rating=2,
                user_id=None,
            )
            fb_id = fb.id
        server.script([load_fixture("cheetah_forward_v2")])
        assert search.resume(run_id) == "succeeded"
    second = user_prompt(design_requests(server)[-1])
    assert (
        "## Feedback from a person who watched the policies\n- On candidate 1.1 (rating 2/5): It rocks on its "
        "back foot; make it stride with both legs."
    ) in second
    with session_scope(search.sf) as s:
        assert s.get(Feedback, fb_id).used_in_iteration == 1
    context = search.iterations(run_id)[1].context
    assert [f["text"] for f in context["feedback"]] == ["It rocks on its back foot; make it stride with both legs."]


@pytest.mark.slow
def test_feedback_is_not_lost_when_the_llm_fails_while_designing_the_next_round(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server, llm_max_retries=0)
        run_id, status = search.run(task_spec(iterations=2, wait_for_feedback=True))
        assert status == "waiting_feedback"
        [c] = search.candidates(run_id)
        with session_scope(search.sf) as s:
            add_feedback(
                s, candidate=s.get(Candidate, c["id"]), text="Keep the torso level.", rating=None, user_id=None
            )
        server.script([Reply(status=503)])
        assert search.resume(run_id) == "failed"
        server.script([load_fixture("cheetah_forward_v2")])
        assert search.resume(run_id) == "succeeded"
    failed, succeeded = design_requests(server)[-2:]
    assert failed == succeeded  # the same prompt, feedback included
    assert "- On candidate 1.1: Keep the torso level." in user_prompt(succeeded)


@pytest.mark.slow
def test_cancel_stops_a_run_and_resume_finishes_it(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server)
        cancelled = []

        def cancel_while_training(local: LocalRun) -> None:
            with session_scope(search.sf) as s:
                run = s.get(Run, local.run_id)
                if not cancelled and any(
                    t.status == "running" for t in s.scalars(select(Training).where(Training.run_id == run.id))
                ):
                    cancel_run(s, run=run)
                    cancelled.append(True)

        local = search.start(task_spec(options={"final_seeds": 1}), on_tick=cancel_while_training)
        run_id = local.run_id
        assert local.status == "cancelled"
        assert cancelled
        with session_scope(search.sf) as s:
            run = s.get(Run, run_id)
            assert run.phase == "search" and run.final == {} and run.finished_at is not None
        assert not [t for t in search.trainings(run_id) if t.purpose == "final"]

        with session_scope(search.sf) as s:
            resume_run(s, run=s.get(Run, run_id), dispatcher=local.dispatcher)  # the same dispatcher works again
        assert search.settle(local, timeout=90) == "succeeded"
    doc = search.doc(run_id)
    assert len(doc["final"]["fitness_per_seed"]) == 2 and doc["final"]["seeds"] == [0, 1000]
    assert [t.purpose for t in search.trainings(run_id)] == ["full", "final"]
    assert len(server.requests) == 1  # nothing designed twice


def test_the_normalized_score_is_eurekas_ratio_unless_the_baselines_are_too_close() -> None:
    score, note = finish.normalized_score(best=30.0, reference=40.0, sparse=20.0, band=2.0)
    assert score == pytest.approx(0.5) and "0 is the fitness used as reward, 1 the env's own reward" in note
    assert finish.normalized_score(best=60.0, reference=40.0, sparse=20.0, band=2.0)[0] == pytest.approx(2.0)
    score, note = finish.normalized_score(best=30.0, reference=35.3, sparse=36.0, band=2.0)
    assert score is None and "not shown" in note and "compare with the reference reward directly" in note


@pytest.mark.slow
def test_baselines_give_a_normalized_score(sqlite_sf, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(options={"baselines": True}))
        assert status == "succeeded", search.doc(run_id)["error"]
    doc = search.doc(run_id)
    base = {b["origin"]: b for b in doc["baselines"]}
    assert set(base) == {"baseline-reference", "baseline-sparse"}
    for b in base.values():
        assert b["status"] == "trained" and b["trainings"][0]["purpose"] == "baseline"
        assert b["trainings"][0]["timesteps"] == 2048 and "code" not in b
    ref, sparse = base["baseline-reference"]["fitness"], base["baseline-sparse"]["fitness"]
    best = doc["best_candidate"]["fitness"]
    final = doc["final"]
    assert final["baselines"] == {"reference": ref, "sparse": sparse}
    score, note = final["normalized_score"], final["normalized_score_note"]
    assert score is None or score == pytest.approx((best - sparse) / (ref - sparse))
    assert ("not shown" in note) == (score is None)
    # the ratio to the reference is given only when the reference's fitness is positive (a ratio of negative
    # fitness values misleads); either way the run says which
    assert final.get("fitness_over_reference") == (pytest.approx(best / ref) if ref > 0 else None)
    # the baselines are not candidates of the search: never the parent, never the best
    assert doc["best_candidate"]["origin"] == "llm" and doc["iterations"][0]["parent_id"] is None


# ------------------------------------------------------------------------------- a failing step fails its run


def test_a_step_that_raises_marks_its_run_failed_with_the_reason_and_it_can_be_resumed(db_sf, tmp_path) -> None:
    settings, recorder = offline_settings(tmp_path), Recorder()
    with session_scope(db_sf) as s:
        _, run = create_task(
            s, spec=task_spec(designer="offline"), owner_id=None, settings=settings, dispatcher=recorder
        )
        run_id = run.id
    steps.start_step(db_sf, run_id, recorder, settings)

    def broken_designer(run):
        raise RuntimeError("the designer's model file is missing")

    steps.design_step(db_sf, run_id, recorder, settings, broken_designer)
    with session_scope(db_sf) as s:
        run = s.get(Run, run_id)
        assert run.status == RunStatus.FAILED
        assert "the design step failed with RuntimeError: the designer's model file is missing" in run.error
        assert f"POST /api/v1/runs/{run_id}/resume" in run.error
        resume_run(s, run=run, dispatcher=recorder)
    assert recorder.calls[-1] == ("resume", run_id)


def test_a_training_that_fails_outside_the_sandbox_is_recorded_and_the_iteration_goes_on(sqlite_sf, tmp_path) -> None:
    # the worker's scratch directory cannot be made (a file stands where it should be): a fault of the installation
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "work").write_text("not a directory")
    run_id, it_id, recorder = _iteration_with(sqlite_sf, tmp_path, ["queued"])
    with session_scope(sqlite_sf) as s:
        [t] = s.scalars(select(Training).where(Training.run_id == run_id))
        t_id = t.id
    assert steps.train_step(sqlite_sf, t_id, recorder, offline_settings(tmp_path)) == "failed"
    with session_scope(sqlite_sf) as s:
        t = s.get(Training, t_id)
        assert t.status == "failed" and t.error.startswith("internal error: ") and "Errno" in t.error
        assert t.candidate.status == "failed"
        assert s.get(Iteration, it_id).status == "done"  # the completion hook ran: the run is not stuck


def test_a_training_and_its_candidate_are_recorded_together_so_a_siblings_hook_sees_both(sqlite_sf, tmp_path) -> None:
    # Two trainings end at once in two workers. If the first's status were committed before its candidate's
    # fitness, the second's completion hook could close the iteration without it and pick the wrong best.
    run_id, it_id, recorder = _iteration_with(sqlite_sf, tmp_path, ["running", "running"])
    with session_scope(sqlite_sf) as s:
        first, second = s.scalars(select(Training).where(Training.run_id == run_id).order_by(Training.id))
        ids = first.id, second.id
    settings = offline_settings(tmp_path)
    good = {"fitness": {"mean": 9.0, "std": 0.0, "per_episode": [9.0]}}
    poor = {"fitness": {"mean": 2.0, "std": 0.0, "per_episode": [2.0]}}
    training.record_outcome(
        sqlite_sf, ids[0], status="ok", error=None, result=good, artifacts_key="run-1/candidate-1/training-1"
    )
    # the first worker has not run its hook yet; the second ends and runs its own
    training.record_outcome(
        sqlite_sf, ids[1], status="ok", error=None, result=poor, artifacts_key="run-1/candidate-2/training-2"
    )
    iterations.training_finished(sqlite_sf, ids[1], recorder, settings)
    with session_scope(sqlite_sf) as s:
        assert s.get(Iteration, it_id).status == "done"
        best = s.get(Candidate, s.get(Run, run_id).best_candidate_id)
        assert best.fitness == 9.0 and best.trainings[0].id == ids[0]


def test_a_cancel_shows_what_waited_as_cancelled_and_a_resume_clears_the_old_error(sqlite_sf, tmp_path) -> None:
    """After a cancel nothing says 'queued' or 'training' (baselines included); the resumed training starts clean."""
    run_id, _, recorder = _iteration_with(sqlite_sf, tmp_path, ["ok", "queued", "running"])
    with session_scope(sqlite_sf) as s:
        run = s.get(Run, run_id)
        baseline = Candidate(run_id=run_id, index=0, origin="baseline-reference", code="x", status="training")
        s.add(baseline)
        s.flush()
        s.add(Training(candidate_id=baseline.id, run_id=run_id, purpose="baseline", timesteps=2048, seed=0))
        s.flush()
        s.get(Candidate, s.scalars(select(Candidate).where(Candidate.index == 2)).first().id).status = "training"
        cancel_run(s, run=run)
    with session_scope(sqlite_sf) as s:
        statuses = {c.origin + str(c.index): c.status for c in s.scalars(select(Candidate))}
        trainings = {t.candidate.index if t.purpose != "baseline" else "b": t for t in s.scalars(select(Training))}
        assert statuses == {
            "offline0": "trained",
            "offline1": "cancelled",
            "offline2": "cancelled",
            "baseline-reference0": "cancelled",
        }
        assert trainings[1].status == "cancelled" and "cancelled before this training started" in trainings[1].error
        assert trainings["b"].status == "cancelled" and trainings[0].status == "ok"
        # the running one is stopped at its next checkpoint by its worker, which records it so
        trainings[2].status, trainings[2].error = "cancelled", "the run was cancelled while this training ran"
        resume_run(s, run=s.get(Run, run_id), dispatcher=recorder)
    lifecycle.resume(sqlite_sf, run_id, recorder, offline_settings(tmp_path))
    with session_scope(sqlite_sf) as s:
        assert {c.status for c in s.scalars(select(Candidate)) if c.index or c.origin != "offline"} == {"queued"}
        again = [t for t in s.scalars(select(Training)) if t.status == "queued"]
        assert len(again) == 3 and all(t.error is None for t in again)
