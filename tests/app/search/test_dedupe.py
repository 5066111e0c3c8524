"""Equivalent programs hash alike; programs that reward something else do not."""

from __future__ import annotations

import hashlib

from app.llm.extraction import extract_program
from app.search.design.dedupe import normalised_hash
from tests.support.fixtures import load_fixture

FORWARD = extract_program(load_fixture("cheetah_forward")).source

RESTYLED = '''"""A forward reward."""
import numpy as np


def compute_reward(s, a):
    """Pay speed, charge effort and flips."""
    fwd = 1.0 * s.x_velocity   # speed
    effort = 0.1 * np.sum(np.square(a), axis=-1)
    flip = 0.5 * np.clip(-s.upright, 0.0, 1.0)
    total = fwd - effort - flip
    return total, {"forward": fwd, "ctrl_cost": -effort, "flip_penalty": -flip}
'''

FORWARD_WITH_CONSTANTS = """import numpy as np

forward_temp = 1.0

def compute_reward(state, action):
    forward = forward_temp * state.x_velocity
    return forward, {"forward": forward}
"""


def test_comments_docstrings_layout_and_local_names_do_not_matter() -> None:
    # the fixture keeps its weights in locals; write the same program with other names and no intermediates
    same = FORWARD.replace("forward_temp", "speed_scale").replace(
        "# Main objective: forward speed of the torso along +x.", ""
    )
    assert normalised_hash(same) == normalised_hash(FORWARD)
    assert normalised_hash("\n\n" + FORWARD.replace("    ", "        ") + "\n# end\n") == normalised_hash(FORWARD)


def test_renamed_arguments_and_variables_hash_alike() -> None:
    plain = (
        RESTYLED.replace("s, a", "state, action")
        .replace("s.", "state.")
        .replace("(a)", "(action)")
        .replace("fwd", "forward")
        .replace("total", "reward")
    )
    assert plain != RESTYLED
    assert normalised_hash(plain) == normalised_hash(RESTYLED)


def test_module_constants_renamed_consistently_hash_alike() -> None:
    assert normalised_hash(FORWARD_WITH_CONSTANTS.replace("forward_temp", "SPEED")) == normalised_hash(
        FORWARD_WITH_CONSTANTS
    )


def test_a_different_weight_field_or_component_name_is_a_different_program() -> None:
    base = normalised_hash(FORWARD)
    assert normalised_hash(FORWARD.replace("ctrl_weight = 0.1", "ctrl_weight = 0.2")) != base
    assert normalised_hash(FORWARD.replace("state.x_velocity", "state.z_velocity")) != base
    assert normalised_hash(FORWARD.replace('"flip_penalty"', '"flip"')) != base
    assert normalised_hash(FORWARD.replace("forward - ctrl_cost", "forward + ctrl_cost")) != base


def test_swapping_which_constant_is_used_where_is_a_different_program() -> None:
    a = "A = 1.0\nB = 2.0\n\ndef compute_reward(state, action):\n    r = A * state.x_velocity + B * state.upright\n    return r, {'r': r}\n"
    b = a.replace("r = A * state.x_velocity + B * state.upright", "r = B * state.x_velocity + A * state.upright")
    assert normalised_hash(a) != normalised_hash(b)


def test_unparsable_programs_hash_by_their_text() -> None:
    broken = extract_program(load_fixture("syntax_error")).source
    # no AST to normalise: the hash is the text's own, so only a byte-identical answer counts as a duplicate
    assert normalised_hash(broken) == hashlib.sha256(broken.encode()).hexdigest()
    assert normalised_hash(broken) != normalised_hash(broken + "\n")
    assert normalised_hash(broken) != normalised_hash(FORWARD)
