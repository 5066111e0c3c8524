"""Taking programs out of chat answers as real models write them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.llm.extraction import ExtractionError, extract_program
from tests.support.fixtures import fixture_names, load_fixture

N = 4
RUNNABLE = ["cheetah_forward", "cheetah_forward_v2", "cheetah_helpers", "cheetah_flip_hack", "hopper_backflip"]


def batch_state() -> SimpleNamespace:
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        x_velocity=rng.normal(size=N),
        z_position=rng.uniform(0.5, 1.5, N),
        upright=rng.uniform(-1, 1, N),
        angular_velocity=rng.normal(size=(N, 3)),
        is_healthy=np.ones(N, bool),
    )


def run(source: str) -> tuple[np.ndarray, dict]:
    namespace: dict = {}
    exec(compile(source, "<reward>", "exec"), namespace)
    return namespace["compute_reward"](batch_state(), np.full((N, 6), 0.5))


def test_every_fixture_is_taken_or_refused_with_a_reason() -> None:
    names = fixture_names()
    assert len(names) == 14
    for name in names:
        text = load_fixture(name)
        if name == "no_code":
            with pytest.raises(ExtractionError, match="no fenced ```python code block"):
                extract_program(text)
            continue
        entry, signature = (
            ("compute_fitness", "compute_fitness(traj)")
            if name.startswith("fitness_")
            else ("compute_reward", "compute_reward(state, action)")
        )
        extracted = extract_program(text, entry)
        assert f"def {signature}" in extracted.source, name
        assert "```" not in extracted.source
        assert extracted.prose and f"def {entry}" not in extracted.prose
        assert extracted.warnings == []


@pytest.mark.parametrize("name", RUNNABLE)
def test_sound_answers_give_programs_that_run_on_a_batch(name: str) -> None:
    reward, components = run(extract_program(load_fixture(name)).source)
    assert reward.shape == (N,)
    assert components and all(np.shape(v) == (N,) for v in components.values())


def test_broken_code_is_passed_on_for_the_critic_not_judged_here() -> None:
    source = extract_program(load_fixture("syntax_error")).source
    with pytest.raises(SyntaxError):
        compile(source, "<reward>", "exec")
    assert "import os" in extract_program(load_fixture("forbidden_import")).source


def test_prose_around_the_code_is_kept_for_audit() -> None:
    extracted = extract_program(load_fixture("cheetah_forward"))
    assert extracted.prose.startswith("To make the cheetah run forward quickly")
    assert extracted.prose.endswith("without stopping the cheetah from running.")
    assert "ctrl_weight" not in extracted.prose
    assert extracted.source.startswith("import numpy as np\n")
    assert extracted.blocks == 1


def test_helpers_in_a_separate_block_come_before_the_reward() -> None:
    extracted = extract_program(load_fixture("cheetah_helpers"))
    assert extracted.blocks == 2
    assert extracted.source.index("def _smooth_speed") < extracted.source.index("def compute_reward")
    assert "And the reward itself:" in extracted.prose


def test_a_draft_then_a_final_takes_the_final_with_the_helpers_before_it() -> None:
    text = (
        "A helper first:\n\n```python\nimport numpy as np\n\nSCALE = 2.0\n\ndef _speed(v):\n"
        "    return SCALE * v\n```\n\n"
        "A first draft:\n\n```python\nimport numpy as np\n\ndef compute_reward(state, action):\n"
        "    return state.x_velocity, {'draft': state.x_velocity}\n```\n\n"
        "On second thought, add a control cost:\n\n```python\nimport numpy as np\n\n"
        "def compute_reward(state, action):\n"
        "    forward = _speed(state.x_velocity)\n    ctrl = 0.1 * np.sum(action ** 2, axis=-1)\n"
        "    return forward - ctrl, {'forward': forward, 'ctrl': -ctrl}\n```\n\n"
        "Usage:\n\n```python\nreward, parts = compute_reward(state, action)\n```\n"
    )
    extracted = extract_program(text)
    assert extracted.blocks == 2
    assert "'draft'" not in extracted.source and "_speed(state.x_velocity)" in extracted.source
    assert extracted.source.count("import numpy as np") == 1
    assert any("earlier draft" in w for w in extracted.warnings)
    assert any("left out" in w for w in extracted.warnings)  # the usage example would fail at import time
    reward, components = run(extracted.source)
    assert set(components) == {"forward", "ctrl"} and reward.shape == (N,)


@pytest.mark.parametrize(
    "fence,close",
    [
        ("```python", "```"),
        ("```py", "```"),
        ("```Python", "```"),
        ("```", "```"),
        ("``` python", "```"),
        ("~~~python", "~~~"),
        ("````python", "````"),
    ],
)
def test_python_fences_are_recognised(fence: str, close: str) -> None:
    code = "def compute_reward(state, action):\n    return state.x_velocity, {}\n"
    text = f"Here it is.\n\n{fence}\n{code}{close}\nDone."
    extracted = extract_program(text)
    assert extracted.source == code
    assert extracted.prose == "Here it is.\n\nDone."


def test_blocks_in_other_languages_are_ignored() -> None:
    text = 'Install first:\n\n```bash\npip install numpy\n```\n\n```json\n{"weights": [1, 2]}\n```\n\n' + load_fixture(
        "cheetah_forward"
    )
    extracted = extract_program(text)
    assert "pip install" not in extracted.source and "weights" not in extracted.source
    assert extracted.blocks == 1
    assert any("bash" in w for w in extracted.warnings)


def test_an_indented_block_inside_a_list_is_dedented() -> None:
    text = (
        "1. The reward:\n\n   ```python\n   def compute_reward(state, action):\n"
        "       return state.x_velocity, {}\n   ```\n"
    )
    assert extract_program(text).source.startswith("def compute_reward(state, action):\n    return")


def test_code_without_a_fence_is_refused_with_a_reason() -> None:
    text = (
        "Here is the reward:\n\ndef compute_reward(state, action):\n    forward = state.x_velocity\n"
        "    return forward, {'forward': forward}\n"
    )
    with pytest.raises(ExtractionError, match="must be fenced") as err:
        extract_program(text)
    assert "```python" in str(err.value)


def test_an_unclosed_fence_with_the_reward_is_recovered_with_a_warning() -> None:
    text = load_fixture("cheetah_forward").split("```\n\nThe forward term")[0]
    assert text.count("```") == 1
    extracted = extract_program(text)
    assert "return reward, {" in extracted.source
    assert len(extracted.warnings) == 1 and "cut off" in extracted.warnings[0]
    run(extracted.source)


def test_a_truncated_final_falls_back_to_the_last_complete_definition() -> None:
    complete = load_fixture("cheetah_forward_v2")
    text = complete + "\nAn even better version:\n\n```python\ndef compute_reward(state, action):\n    v = np.tanh("
    extracted = extract_program(text)
    assert "speed_temp = 0.25" in extracted.source and "An even better" in extracted.prose
    assert any("cut off" in w for w in extracted.warnings)


def test_an_unclosed_fence_without_the_reward_is_refused() -> None:
    text = "Let me start with a helper:\n\n```python\nimport numpy as np\n\ndef _speed(v):\n    return np.tanh("
    with pytest.raises(ExtractionError, match=r"never closed.*cut off"):
        extract_program(text)


def test_code_blocks_without_the_entry_are_refused() -> None:
    text = "```python\nimport numpy as np\n\ndef reward_fn(state, action):\n    return state.x_velocity, {}\n```\n"
    reason = r"define no `compute_reward` function.*def compute_reward\(state, action\)"
    with pytest.raises(ExtractionError, match=reason):
        extract_program(text)


def test_an_entry_written_outside_its_block_is_refused() -> None:
    text = "```python\nimport numpy as np\n```\n\ndef compute_reward(state, action):\n    return state.x_velocity, {}\n"
    with pytest.raises(ExtractionError, match="outside the code blocks"):
        extract_program(text)


def test_only_non_python_blocks_are_refused() -> None:
    with pytest.raises(ExtractionError, match=r"\(bash\) hold no Python"):
        extract_program("Run this:\n\n```bash\necho hi\n```\n")


@pytest.mark.parametrize("text", ["", "   \n", None])
def test_an_empty_answer_is_refused(text: str | None) -> None:
    with pytest.raises(ExtractionError, match="empty"):
        extract_program(text)  # type: ignore[arg-type]


def test_the_entry_can_be_a_fitness_program() -> None:
    text = "```python\ndef compute_fitness(traj):\n    return float(traj.x_position[-1])\n```"
    assert "compute_fitness" in extract_program(text, entry="compute_fitness").source
    with pytest.raises(ExtractionError, match=r"def compute_fitness\(traj\)"):
        extract_program(load_fixture("cheetah_forward"), entry="compute_fitness")


def test_windows_line_endings() -> None:
    extracted = extract_program(load_fixture("cheetah_helpers").replace("\n", "\r\n"))
    assert "\r" not in extracted.source and extracted.blocks == 2


def test_helpers_after_the_reward_are_kept() -> None:
    text = (
        "```python\nimport numpy as np\n\ndef compute_reward(state, action):\n    v = _clip(state.x_velocity)\n"
        "    return v, {'forward': v}\n```\n\nwith the helper:\n\n```python\nLIMIT = 3.0\n\ndef _clip(v):\n"
        "    return np.clip(v, -LIMIT, LIMIT)\n```\n"
    )
    extracted = extract_program(text)
    assert extracted.blocks == 2 and extracted.warnings == []
    reward, _ = run(extracted.source)
    assert np.all(np.abs(reward) <= 3.0)
