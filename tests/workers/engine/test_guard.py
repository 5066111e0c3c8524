"""During training a program is held to what its dry run showed: it cannot change once it is trained, or spoof
what is recorded. Real MuJoCo envs through the training wrapper, a few hundred steps each."""

from __future__ import annotations

import re

import numpy as np
import pytest

import envs
from workers.engine.batched import BatchedEnv
from workers.engine.dryrun import dry_run_reward
from workers.engine.wrapper import ContractReward
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
    from workers.engine.guard import Guard

    source = reward_program(
        "    s = 0.0\n    for i in range(800_000 * (action.shape[0] == 4)):\n        s += 1.0\n"
        "    return state.x_velocity, {'forward': state.x_velocity}\n"
    )
    dry_run_reward(CHEETAH, source, cost_ratio=10.0)
    contract = wrapped(load_program(source), guard=Guard(cost_ratio=10.0, cost_window=10))
    with pytest.raises(ProgramError) as info:
        run(contract, 30)
    message = str(info.value)
    assert re.search(r"^at training step \d+: one call of compute_reward takes", message), message
    assert "ms for 4 envs (median of 10 calls)" in message and "the limit is 10×" in message


def test_a_sound_reward_passes_every_check_of_a_long_run() -> None:
    contract = wrapped(load_program(envs.get_spec(CHEETAH).reference_reward), n=8)
    run(contract, 600)
    assert contract.guard.calls == 600 and contract.guard.checks >= 4
