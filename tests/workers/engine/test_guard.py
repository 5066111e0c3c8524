"""During training a program is held to what its dry run showed: it cannot change once it is trained, or spoof
what is recorded. Real MuJoCo envs through the training wrapper, a few hundred steps each."""

from __future__ import annotations

import inspect
import re
import time

import numpy as np
import pytest

import envs
from tests.workers.program.hostile import MIXING, SLOW
from workers.engine.batched import BatchedEnv
from workers.engine.cost import CostBudget
from workers.engine.dryrun import dry_run_reward
from workers.engine.guard import Guard
from workers.engine.wrapper import ContractReward
from workers.program.policy import ProgramRejected
from workers.program.program import Program, ProgramError, load_program

CHEETAH = "HalfCheetah-v5"


def wrapped(program: Program, n: int = 4, episode_steps: int | None = None, **kwargs) -> ContractReward:
    spec = envs.get_spec(CHEETAH)
    env = BatchedEnv(spec, list(range(n)), max_episode_steps=episode_steps)
    contract = ContractReward(env, program, **kwargs)
    contract.reset()
    return contract


def run(contract: ContractReward, steps: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(steps):
        contract.reward_step(rng.uniform(-1, 1, size=(contract.num_envs, 6)).astype(np.float32))


def reward_program(body: str) -> str:
    return f"import numpy as np\n\n\ndef compute_reward(state, action):\n{body}"


def test_recorded_episode_lengths_are_the_engines_own_whatever_the_program_does_to_its_view() -> None:
    def rewrite_view(state, action):  # what no checked program can do: rewrite the state it was shown
        state.__dict__["step"] = np.full(action.shape[0], 999)
        return state.x_velocity, {"forward": state.x_velocity}

    contract = wrapped(Program("reward", "", rewrite_view), episode_steps=5)
    run(contract, 12)
    window = contract.take_window()
    assert window.episode_lengths == [5] * 8
    assert window.truncated == 8


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # envs mixed only in a batch of four, late in an episode: the dry run never sees that
            "    x = state.x_velocity\n    late = (state.step > 20) & (action.shape[0] == 4)\n"
            "    r = np.where(late, x - np.mean(x), x)\n    return r, {'forward': r}\n",
            "the reward of one env depends on the other envs in the batch",
        ),
        (
            "    x = state.x_velocity\n    late = np.all(state.step > 20) and action.shape[0] == 4\n"
            "    return x, ({'late': x} if late else {'forward': x})\n",
            "the component names changed during training: ['forward'] at the first step, ['late'] now",
        ),
    ],
    ids=["mixing envs", "changing names"],
)
def test_a_program_that_changes_once_it_trains_fails_naming_the_training_step(body: str, expected: str) -> None:
    source = reward_program(body)
    dry_run_reward(CHEETAH, source)  # it passes its dry run
    contract = wrapped(load_program(source))
    with pytest.raises(ProgramError) as info:
        run(contract, 400)
    message = str(info.value)
    assert expected in message
    step = int(message.split("at training step ")[1].split(":")[0])
    assert step >= 4 * 20


def test_a_reward_that_turns_slow_in_training_fails_with_the_figures() -> None:
    source = reward_program(
        "    s = 0.0\n    for i in range(800_000 * (action.shape[0] == 4)):\n        s += 1.0\n"
        "    return state.x_velocity, {'forward': state.x_velocity}\n"
    )
    dry_run_reward(CHEETAH, source, cost_ratio=10.0)  # at the training's default N of 64 it costs nothing
    contract = wrapped(load_program(source), guard=Guard(cost_ratio=10.0))
    with pytest.raises(ProgramError) as info:
        run(contract, 30)
    message = str(info.value)
    found = re.search(
        r"^at training step (\d+): compute_reward has taken ([\d.]+) s in its first (\d+) calls of 4 envs "
        r"\(mean [\d.]+ ms a call\), (\d+)× the ([\d.]+) ms that simulating the same work took; the limit is 10×",
        message,
    )
    assert found, message
    assert int(found.group(3)) < 30 and int(found.group(1)) == 4 * (int(found.group(3)) - 1)
    assert 1000 * float(found.group(2)) > 10 * float(found.group(5))


def test_a_reward_slow_on_45_percent_of_the_trainings_calls_fails_from_the_first_calls() -> None:
    # Cheap at N=1 and N=8; at the training's N of 16 about 0.1 s on 45 % of calls. A median over windows of 200
    # calls never filled in a training it made 64 times as long.
    source = SLOW["slow on 45 % of the training's calls"].source
    contract = wrapped(load_program(source), n=16, guard=Guard(cost_ratio=10.0))
    started = time.perf_counter()
    with pytest.raises(ProgramError, match=r"compute_reward has taken [\d.]+ s in its first \d+ calls? of 16 envs"):
        run(contract, 200)
    assert contract.guard.calls < 10 and time.perf_counter() - started < 30


def test_no_single_call_may_stall_a_training_whatever_the_calls_before_it_saved() -> None:
    budget = CostBudget("compute_reward", ratio=10.0)
    for _ in range(100_000):  # honest calls leave 100 s of the budget unused
        budget.charge(0.0001, 0.0001, "64 envs")
    with pytest.raises(ProgramError, match=r"one call of compute_reward took 5.00 s for 64 envs \(call 100,001\)"):
        budget.charge(5.0, 0.0001, "64 envs")


# ------------------------------------------------ the independence check cannot be predicted or gamed


def test_an_offset_cannot_widen_the_tolerance_of_the_independence_check() -> None:
    for name in ("offset hides the batch mean", "offset hides a tenth of the batch mean"):
        with pytest.raises(ProgramRejected, match="depends on the other envs in the batch"):
            dry_run_reward(CHEETAH, MIXING[name].source)
        contract = wrapped(load_program(MIXING[name].source), n=8)
        with pytest.raises(ProgramError, match=r"at training step 0: the reward of one env depends on the other"):
            run(contract, 1)  # the first call is always compared


def test_an_honest_reward_with_a_large_offset_passes_the_independence_check() -> None:
    source = reward_program(
        "    v = 9e5 + np.exp(np.clip(state.x_velocity, -5.0, 5.0)) - 0.1 * np.sum(np.square(action), axis=-1)\n"
        "    return v, {'forward': v}\n"
    )
    dry_run_reward(CHEETAH, source, n_envs=16)
    run(wrapped(load_program(source), n=16), 300)


def _checked_calls(contract: ContractReward, steps: int) -> list[int]:
    rng = np.random.default_rng(0)
    checked, before = [], 0
    for call in range(steps):
        contract.step(rng.uniform(-1, 1, size=(contract.num_envs, 6)).astype(np.float32))
        if contract.guard.checks > before:
            checked.append(call)
            before = contract.guard.checks
    return checked


def test_the_check_schedule_comes_from_the_system_not_from_the_trainings_seed() -> None:
    assert "seed" not in inspect.signature(Guard).parameters
    source = envs.get_spec(CHEETAH).reference_reward
    first, second = (_checked_calls(wrapped(load_program(source)), 400) for _ in range(2))
    assert first != second
    for schedule in (first, second):
        assert schedule[0] == 0 and 15 <= len(schedule) <= 90  # about one call in ten, the first always


def test_a_program_that_mixes_wherever_the_seeded_schedule_does_not_look_is_caught() -> None:
    # The schedule came from default_rng(training seed): with seed 0 a program with no state at all could
    # mix on every call but the ten the guard would check in 400.
    contract = wrapped(load_program(MIXING["mixes where the seed-0 schedule does not look"].source))
    with pytest.raises(ProgramError, match="depends on the other envs in the batch"):
        run(contract, 400)


def test_a_program_that_mixes_only_in_batches_like_trainings_is_caught_by_the_dry_run_at_the_trainings_n() -> None:
    for name in (
        "mixes in synchronised batches of the training's N",
        "mixes late in synchronised batches of the training's N",
    ):
        source = MIXING[name].source
        dry_run_reward(CHEETAH, source, n_envs=8)  # at another N it is honest
        with pytest.raises(ProgramRejected, match="depends on the other envs in the batch"):
            dry_run_reward(CHEETAH, source, n_envs=16)


def test_a_sound_reward_passes_every_check_of_a_long_run() -> None:
    contract = wrapped(load_program(envs.get_spec(CHEETAH).reference_reward), n=8)
    run(contract, 600)
    assert contract.guard.calls == 600 and contract.guard.checks >= 4
