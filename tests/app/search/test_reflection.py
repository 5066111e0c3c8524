"""Reflection: diagnostics and the text the designer reads, from synthetic training results of the engine's shape."""

from __future__ import annotations

from app.search.design.reflection import diagnose, fmt, reflect


def stats(mean: float, low: float | None = None, high: float | None = None) -> dict:
    return {"mean": mean, "min": mean if low is None else low, "max": mean if high is None else high}


def checkpoint(
    step: int, *, fitness: float, ret: float, length: float = 1000.0, terminated: int = 0, truncated: int = 8
) -> dict:
    return {
        "timesteps": step,
        "fitness": fitness,
        "episode_return": ret,
        "episode_env_return": ret / 2,
        "episode_length": length,
        "terminated": terminated,
        "truncated": truncated,
        "episodes": terminated + truncated,
        "reward": stats(ret / 1000),
    }


def episode(steps: int = 1000, ended: str = "time limit") -> dict:
    return {
        "steps": steps,
        "ended": ended,
        "distance_x": 3.2,
        "distance_y": 0.0,
        "mean_x_velocity": 0.064,
        "height": {"min": 0.4, "mean": 0.6, "max": 0.8},
        "upright_mean": 0.9,
        "upside_down_fraction": 0.0,
        "pitch_turns": 0.0,
    }


def result(*, components: dict, fitness: list[float], returns: list[float], **cp) -> dict:
    cps = [
        checkpoint(1000 * (i + 1), fitness=f, ret=r, **cp)
        for i, (f, r) in enumerate(zip(fitness, returns, strict=False))
    ]
    return {
        "timesteps": 1000 * len(cps),
        "checkpoints": cps,
        "components": components,
        "fitness": {"mean": fitness[-1], "std": 0.1, "per_episode": [fitness[-1]]},
        "episodes": [episode()],
    }


HEALTHY = {
    "forward": [stats(0.1, -1, 1), stats(0.5, -1, 2), stats(1.0, -1, 3)],
    "ctrl_cost": [stats(-0.3, -0.6, 0.0), stats(-0.3, -0.6, 0.0), stats(-0.3, -0.6, 0.0)],
}
LEARNING = {"fitness": [1.0, 2.0, 4.0], "returns": [10.0, 20.0, 40.0]}


def kinds(found: list[dict]) -> list[str]:
    return [d["kind"] for d in found]


def test_a_healthy_training_has_no_diagnostics() -> None:
    assert diagnose(result(components=HEALTHY, **LEARNING)) == []


def test_a_constant_component_is_named() -> None:
    comps = HEALTHY | {"flip_penalty": [stats(0.0), stats(0.0), stats(0.0)]}
    found = diagnose(result(components=comps, **LEARNING))
    assert kinds(found) == ["constant"]
    assert found[0]["component"] == "flip_penalty"
    assert "'flip_penalty' stayed constant at 0" in found[0]["text"] and "remove it" in found[0]["text"]


def test_a_component_that_varies_only_once_is_not_constant() -> None:
    comps = HEALTHY | {"bonus": [stats(0.0), stats(0.0), stats(0.0, 0.0, 1.0)]}
    assert "constant" not in kinds(diagnose(result(components=comps, **LEARNING)))


def test_a_dominant_component_is_named_with_its_share() -> None:
    comps = {"forward": HEALTHY["forward"], "alive": [stats(5.0, 4, 6), stats(9.0, 4, 12), stats(19.0, 4, 25)]}
    found = diagnose(result(components=comps, **LEARNING))
    assert kinds(found) == ["dominant"]
    assert found[0]["component"] == "alive" and "95%" in found[0]["text"]


def test_return_up_while_fitness_down_is_suspected_reward_hacking() -> None:
    found = diagnose(
        result(
            components=HEALTHY, fitness=[4.0, 4.0, 3.0, 1.0, 0.5, 0.2], returns=[10.0, 20.0, 40.0, 80.0, 160.0, 320.0]
        )
    )
    assert kinds(found) == ["reward_hacking"]
    assert "rose (15 → 240)" in found[0]["text"] and "fell (4 → 0.35)" in found[0]["text"]


def test_fitness_falling_with_the_return_is_not_reward_hacking() -> None:
    found = diagnose(result(components=HEALTHY, fitness=[4.0, 3.0, 1.0], returns=[40.0, 20.0, 10.0]))
    assert "reward_hacking" not in kinds(found)


def test_flat_fitness_is_reported() -> None:
    found = diagnose(result(components=HEALTHY, fitness=[2.0, 2.0, 2.01], returns=[1.0, 5.0, 9.0]))
    assert kinds(found) == ["flat_fitness"]


def test_early_terminations_are_reported_with_the_mean_length() -> None:
    found = diagnose(result(components=HEALTHY, terminated=6, truncated=2, length=120.0, **LEARNING))
    assert kinds(found) == ["early_termination"]
    assert "18 of 24 training episodes ended early" in found[0]["text"] and "after 120 steps" in found[0]["text"]


def test_a_minority_of_early_terminations_is_not_reported() -> None:
    assert diagnose(result(components=HEALTHY, terminated=2, truncated=6, **LEARNING)) == []


def test_evaluation_episodes_that_all_end_early_are_reported() -> None:
    r = result(components=HEALTHY, **LEARNING)
    r["episodes"] = [episode(80, "terminated (unhealthy)"), episode(120, "terminated (unhealthy)")]
    assert kinds(diagnose(r)) == ["eval_termination"]
    assert "after 100 steps on average" in diagnose(r)[0]["text"]


def test_the_reflection_text_carries_the_curves_components_and_diagnostics() -> None:
    comps = HEALTHY | {"flip_penalty": [stats(0.0), stats(0.0), stats(0.0)]}
    r = reflect(result(components=comps, **LEARNING), fitness_name="forward_distance")
    assert kinds(r.diagnostics) == ["constant"]
    text = r.text
    assert "We trained PPO for 3000 steps with this reward and measured it at 3 checkpoints." in text
    assert "Final fitness (forward_distance): 4 ± 0.1 over 1 evaluation episodes." in text
    assert "Fitness over training: [1, 2, 4]" in text
    assert "Episode return of this reward over training: [10, 20, 40]" in text
    assert "- forward: [0.1, 0.5, 1] (min -1, max 3, 77% of the reward's magnitude at the end)" in text
    assert "- flip_penalty: [0, 0, 0] (min 0, max 0, 0% of the reward's magnitude at the end)" in text
    assert "Diagnostics:\n- component 'flip_penalty' stayed constant" in text
    assert "episode 1: 1000 steps, ended by time limit; moved 3.2 m along x" in text


def test_the_reflection_of_a_result_without_checkpoints_still_renders() -> None:
    r = reflect({"components": {}, "fitness": None}, fitness_name="forward_distance")
    assert "Final fitness (forward_distance): n/a ± n/a over 0 evaluation episodes." in r.text
    assert r.diagnostics == []


def test_numbers_are_short_and_never_negative_zero() -> None:
    assert [fmt(None), fmt(-0.0), fmt(0.000123456), fmt(12345.678), fmt(-2.5)] == [
        "n/a",
        "0",
        "0.000123",
        "1.235e+04",
        "-2.5",
    ]
