"""The trajectory screen: on recorded HalfCheetah episodes of runners and of gaits that flip onto their back, a
reward that pays for flipping is refused (with the pair it gets wrong, in words), a sound one passes, a constant one
cannot tell them apart; the episodes come from open-loop gaits (cheap, deterministic), written as a training does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import envs
from tests.support.trajectories import CONSTANT, ENV, PAYS_FOR_FALLING, RUNNERS, SOUND, record_gaits
from workers.engine.evaluate import sandbox_screen
from workers.engine.ranks import average_ranks, spearman
from workers.engine.screen import ScreenVerdict, judge, screen_reward, significant
from workers.engine.trajectories import MAX_ROWS, read_trajectories, write_trajectories
from workers.sandbox.runner import Limits, Outcome


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trajectories.npz of 7 episodes of 200 steps: four runners and three flippers, with their forward distance."""
    return record_gaits(tmp_path_factory.mktemp("screen") / "trajectories.npz")


def test_the_recorded_episodes_are_runners_and_flippers(recorded: Path) -> None:
    from workers.engine.batched import BatchedEnv

    env = BatchedEnv(envs.get_spec(ENV), [0])
    kept = read_trajectories(recorded, env.layout, env.act_dim)
    fitness = [t.fitness for t in kept]
    assert min(fitness[: len(RUNNERS)]) > 4.0, fitness
    assert max(fitness[len(RUNNERS) :]) < 1.0, fitness


def test_a_reward_that_pays_for_falling_is_refused_in_words(recorded: Path) -> None:
    report = screen_reward(ENV, PAYS_FOR_FALLING, [recorded])
    assert report.verdict == ScreenVerdict.AGAINST and not report.verdict.trains
    assert report.rho is not None and report.rho < -0.5
    assert "this reward prefers the episode that spent most of its 200 steps on its back" in report.text
    assert "to the one that ran" in report.text and "m in 200 steps" in report.text


def test_a_sound_reward_passes(recorded: Path) -> None:
    report = screen_reward(ENV, SOUND, [recorded])
    assert report.verdict == ScreenVerdict.PASS and report.verdict.trains
    assert report.rho is not None and report.rho > 0.8
    assert report.episodes == 7


def test_a_constant_reward_cannot_tell_the_episodes_apart(recorded: Path) -> None:
    report = screen_reward(ENV, CONSTANT, [recorded])
    assert report.verdict == ScreenVerdict.FLAT
    assert "gives them all nearly the same return" in report.text


@pytest.mark.slow
def test_the_screen_runs_in_the_sandbox(recorded: Path) -> None:
    res = sandbox_screen(ENV, PAYS_FOR_FALLING, [recorded], Limits(wall_seconds=120))
    assert res.outcome == Outcome.OK, res.error
    assert res.payload["screen"]["verdict"] == "ranks_against_fitness"
    assert res.isolation["environment"] == sorted(res.isolation["environment"])


def test_a_tampered_trajectories_file_is_refused(recorded: Path, tmp_path: Path) -> None:
    from workers.engine.batched import BatchedEnv
    from workers.engine.result import SavedFileError

    env = BatchedEnv(envs.get_spec(ENV), [0])
    with np.load(recorded) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["rows"] = arrays["rows"][:, :, :5]
    bad = tmp_path / "trajectories.npz"
    np.savez(bad, **arrays)
    with pytest.raises(SavedFileError, match="does not hold episodes of this env's rows"):
        read_trajectories(bad, env.layout, env.act_dim)
    np.savez(bad, extra=np.zeros(2), **arrays)
    with pytest.raises(SavedFileError, match="does not hold exactly the arrays"):
        read_trajectories(bad, env.layout, env.act_dim)


def test_too_few_or_alike_episodes_let_a_candidate_through() -> None:
    assert judge([1.0, 2.0], [3.0, 1.0], ["a", "b"]).verdict == ScreenVerdict.INCONCLUSIVE
    assert judge([1.0, 2.0, 3.0, 4.0], [1.0] * 4, ["a"] * 4).verdict == ScreenVerdict.INCONCLUSIVE


def test_episodes_the_envs_own_reward_cannot_rank_are_noise_and_screen_nothing() -> None:
    """Policies that barely learned differ by noise: the env's own reward ranks their episodes at random against the
    fitness, and a reward that ranks them exactly backwards is not refused for it."""
    fitness = [0.1, -0.05, 0.02, 0.08, -0.1, 0.0]
    backwards = [-x for x in fitness]
    at_random = [0.3, 0.1, -0.2, -0.1, 0.4, 0.2]  # the env's own reward: rho within chance
    report = judge(backwards, fitness, ["a"] * 6, at_random)
    assert report.verdict == ScreenVerdict.INCONCLUSIVE and "do not separate" in report.text
    assert judge(backwards, fitness, ["a"] * 6, fitness).verdict == ScreenVerdict.AGAINST
    # over few episodes only a strong correlation counts: 4 episodes need |rho| 0.95
    assert significant(4) == pytest.approx(1.645 / 3**0.5) and significant(100) == pytest.approx(0.1653, abs=1e-3)


def test_a_reward_that_ranks_separating_episodes_almost_at_random_cannot_tell_them_apart() -> None:
    fitness = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    noise = [2.0, 1.0, 4.0, 3.0, 1.5, 3.5, 2.5, 0.5]
    report = judge(noise, fitness, [f"did {i}" for i in range(8)], fitness)
    assert report.verdict == ScreenVerdict.FLAT and "almost at random" in report.text


def test_a_reward_that_ranks_the_episodes_as_its_parent_does_is_trained() -> None:
    """The parent trained the policy the search builds on: a child that disagrees with the fitness as much as the
    parent does is trained (hopper_hop_high refused such children, which would have won); one clearly worse than
    its parent is refused, and its text gives the parent's rho."""
    fitness = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    backwards = [-x for x in fitness]
    words = [f"did {i}" for i in range(12)]

    def parent(offset: float) -> list[float]:  # odd episodes raised by offset: rho -0.79 at 5, -0.57 at 8
        return [-x + (offset if i % 2 else 0.0) for i, x in enumerate(fitness)]

    kin = judge(backwards, fitness, words, fitness, parent(5.0))
    assert kin.verdict == ScreenVerdict.PASS and kin.rho == pytest.approx(-1.0)
    assert kin.parent_rho == pytest.approx(-0.789, abs=1e-3)
    assert "about as its parent reward does (-0.79)" in kin.text
    assert judge(backwards, fitness, words, fitness, parent(8.0)).verdict == ScreenVerdict.AGAINST, "0.43 worse"
    broke = judge(backwards, fitness, words, fitness, fitness)
    assert broke.verdict == ScreenVerdict.AGAINST and broke.parent_rho == pytest.approx(1.0)
    assert "its parent reward ranks them with rho +1.00" in broke.text
    noise = [2.0, 1.0, 4.0, 3.0, 1.5, 3.5, 2.5, 0.5, 2.2, 1.1, 0.7, 3.3]
    assert judge(noise, fitness, words, fitness, fitness).verdict == ScreenVerdict.FLAT
    assert judge(noise, fitness, words, fitness, noise).verdict == ScreenVerdict.PASS
    assert judge([1.0] * 12, fitness, words, fitness, [1.0] * 12).verdict == ScreenVerdict.FLAT, "a constant reward"


def test_the_parent_reward_is_ranked_in_the_same_sandboxed_pass(recorded: Path) -> None:
    refused = screen_reward(ENV, PAYS_FOR_FALLING, [recorded], parent=SOUND)
    assert refused.verdict == ScreenVerdict.AGAINST and refused.parent_rho is not None and refused.parent_rho > 0.8
    kin = screen_reward(ENV, PAYS_FOR_FALLING, [recorded], parent=PAYS_FOR_FALLING)
    assert kin.verdict == ScreenVerdict.PASS and kin.parent_rho == pytest.approx(kin.rho)
    broken = "def compute_reward(state, action):\n    return state.nope, {}\n"
    alone = screen_reward(ENV, PAYS_FOR_FALLING, [recorded], parent=broken)
    assert alone.verdict == ScreenVerdict.AGAINST and alone.parent_rho is None, "a parent that fails is left out"


def test_long_episodes_keep_rows_at_a_stride(tmp_path: Path) -> None:
    from workers.engine.rollout import Episode

    eps = [Episode(0, np.ones((1000, 10)), np.zeros((1000, 3)), False, 0.0)]
    write_trajectories(tmp_path / "t.npz", eps, [1.0])
    with np.load(tmp_path / "t.npz") as data:
        assert data["rows"].shape == (1, MAX_ROWS, 10) and int(data["strides"][0]) == 4


def test_spearman_with_ties() -> None:
    assert average_ranks(np.array([3.0, 1.0, 3.0])).tolist() == [1.5, 0.0, 1.5]
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 1.0]), np.array([1.0, 2.0])) is None
