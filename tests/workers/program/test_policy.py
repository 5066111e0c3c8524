"""The static check: a corpus of escape attempts that must be rejected (rule and place named), and sound programs.

Every rejection is checked for the rule it names and for the place it points at: the
reported line and column must land on the offending code, so that an LLM can fix it.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.workers.program.hostile import STATIC
from workers.engine.dryrun import dry_run_reward
from workers.program import policy, syntax, text
from workers.program.facade import NUMPY, safe_builtins
from workers.program.policy import LINALG_NAMES, NUMPY_NAMES, NUMPY_SUBMODULES, ProgramRejected, check_source
from workers.program.program import call_reward, load_program

HEAD = "import numpy as np\n\n"
RETURN = "    return state.x_velocity, {'forward': state.x_velocity}\n"


def reward(body: str, head: str = HEAD, tail: str = "") -> str:
    """A reward program whose first body line is line 4 (with the default head)."""
    return f"{head}def compute_reward(state, action):\n{body}{RETURN}{tail}"


# (id, source, rule, line, text that the reported column points at)
REJECTED = [
    # dunder walks to object's subclasses, globals, builtins
    ("dunder walk", reward("    x = ().__class__.__bases__[0].__subclasses__()\n"), "dunder", 4, "().__class__"),
    ("__subclasses__", reward("    x = state.__class__.__subclasses__()\n"), "dunder", 4, "state.__class__"),
    ("__globals__", reward("    g = compute_reward.__globals__['np']\n"), "dunder", 4, "compute_reward.__globals__"),
    ("__builtins__", reward("    b = __builtins__['open']\n"), "dunder", 4, "__builtins__"),
    ("__dict__", reward("    d = state.__dict__\n"), "dunder", 4, "state.__dict__"),
    ("lambda __code__", reward("    c = (lambda: 0).__code__\n"), "dunder", 4, "(lambda"),
    ("dunder def", reward("", tail="\n\ndef __getattr__(name):\n    return name\n"), "dunder", 7, "def __getattr__"),
    # frames and tracebacks
    ("gi_frame", reward("    g = (i for i in range(3))\n    f = g.gi_frame\n"), "attributes", 5, "g.gi_frame"),
    (
        "f_back",
        reward("    g = (i for i in range(3))\n    f = g.gi_frame.f_back.f_globals\n"),
        "attributes",
        5,
        "g.gi_frame",
    ),
    ("gi_code", reward("    c = (x for x in [1]).gi_code\n"), "attributes", 4, "(x for x"),
    ("tb_frame", reward("    t = state.tb_frame\n"), "attributes", 4, "state.tb_frame"),
    ("cr_frame", reward("    t = state.cr_frame\n"), "attributes", 4, "state.cr_frame"),
    ("generator helper", reward("", tail="\n\ndef walk(x):\n    yield x\n"), "syntax", 8, "yield x"),
    ("lambda generator", reward("    g = (lambda: (yield))()\n"), "syntax", 4, "yield"),
    # format strings reach attributes by name
    ("str.format", reward("    s = '{0.__class__}'.format(state)\n"), "attributes", 4, "'{0.__class__}'.format"),
    ("format_map", reward("    s = '{x.__class__}'.format_map({'x': state})\n"), "attributes", 4, "'{x.__class__}'"),
    ("format builtin", reward("    s = format(state, '')\n"), "builtins", 4, "format"),
    ("f-string dunder", reward("    s = f'{state.__class__}'\n"), "dunder", 4, "state.__class__"),
    # numpy's file and raw-memory routes
    ("np.load", reward("    w = np.load('weights.npy')\n"), "attributes", 4, "np.load"),
    ("np.save", reward("    np.save('out.npy', state.x_velocity)\n"), "attributes", 4, "np.save"),
    ("np.savetxt", reward("    np.savetxt('out.txt', action)\n"), "attributes", 4, "np.savetxt"),
    ("np.fromfile", reward("    w = np.fromfile('/etc/passwd')\n"), "attributes", 4, "np.fromfile"),
    ("np.memmap", reward("    m = np.memmap('big.bin', mode='w+', shape=(10,))\n"), "attributes", 4, "np.memmap"),
    ("np.ctypeslib", reward("    p = np.ctypeslib.as_ctypes(action)\n"), "attributes", 4, "np.ctypeslib"),
    ("np.lib", reward("    v = np.lib.stride_tricks.as_strided(action, (10**6,), (8,))\n"), "attributes", 4, "np.lib"),
    ("np.DataSource", reward("    d = np.DataSource('/')\n"), "attributes", 4, "np.DataSource"),
    ("np.random", reward("    noise = np.random.rand(3)\n"), "attributes", 4, "np.random"),
    ("arr.tofile", reward("    action.tofile('a.bin')\n"), "attributes", 4, "action.tofile"),
    ("arr.ctypes", reward("    p = action.ctypes.data\n"), "attributes", 4, "action.ctypes"),
    ("arr.dump", reward("    action.dump('a.pkl')\n"), "attributes", 4, "action.dump"),
    ("arr.resize", reward("    action.resize(10**6, refcheck=False)\n"), "attributes", 4, "action.resize"),
    ("private attribute", reward("    m = np._members\n"), "attributes", 4, "np._members"),
    # a way back from a state field to the buffer it was cut from
    ("arr.base", reward("    raw = state.body_positions.base\n"), "attributes", 4, "state.body_positions.base"),
    ("arr.flags", reward("    action.flags['WRITEABLE'] = True\n"), "attributes", 4, "action.flags"),
    # setting attributes: the state's counters, the facades, state that outlives a call
    ("set state.step", reward("    state.step = state.step * 0\n"), "attributes", 4, "state.step"),
    ("set np.pi", reward("    np.pi = 3.0\n"), "attributes", 4, "np.pi"),
    ("set math.pi", reward("", head="import math\nmath.pi = 1e-3\n"), "attributes", 2, "math.pi"),
    ("function attribute", reward("    compute_reward.calls = 1\n"), "attributes", 4, "compute_reward.calls"),
    # builtins that reach names, code or files
    ("getattr", reward("    v = getattr(state, 'x_velocity')\n"), "builtins", 4, "getattr"),
    ("vars", reward("    v = vars(state)\n"), "builtins", 4, "vars"),
    ("globals", reward("    g = globals()\n"), "builtins", 4, "globals"),
    ("locals", reward("    g = locals()\n"), "builtins", 4, "locals"),
    ("eval", reward("    v = eval('1 + 1')\n"), "builtins", 4, "eval"),
    ("exec", reward("    exec('import os')\n"), "builtins", 4, "exec"),
    ("compile", reward("    c = compile('1', 'x', 'eval')\n"), "builtins", 4, "compile"),
    ("open", reward("    f = open('/etc/passwd')\n"), "builtins", 4, "open"),
    ("__import__", reward("    os = __import__('os')\n"), "builtins", 4, "__import__"),
    # dunder names bound by other forms than assignment
    ("import as __builtins__", reward("", head="import math as __builtins__\n"), "dunder", 1, "math as"),
    ("from import as dunder", reward("", head="from numpy import where as __all__\n"), "dunder", 1, "where as"),
    ("dunder parameter", reward("", tail="\n\ndef helper(__builtins__):\n    return 1\n"), "dunder", 7, "__builtins__"),
    ("dunder lambda parameter", reward("    f = lambda __x: 1.0\n"), "dunder", 4, "__x"),
    ("dunder keyword", reward("    r = np.clip(action, __lo=0)\n"), "dunder", 4, "__lo=0"),
    ("type", reward("    t = type(state)\n"), "builtins", 4, "type"),
    ("print", reward('    print(\'{"event": "checkpoint"}\')\n'), "builtins", 4, "print"),
    # imports
    ("import os", reward("", head="import os\nimport numpy as np\n"), "imports", 1, "import os"),
    ("import sys", reward("", head="import numpy as np\nimport sys\n"), "imports", 2, "import sys"),
    ("import subprocess", reward("    import subprocess\n"), "imports", 4, "import subprocess"),
    ("import importlib", reward("", head="import importlib\n\n"), "imports", 1, "import importlib"),
    ("from numpy import load", reward("", head="from numpy import load\n\n"), "attributes", 1, "from numpy"),
    ("import numpy.lib", reward("", head="import numpy.lib as lib\n\n"), "imports", 1, "import numpy.lib"),
    ("from os import path", reward("", head="from os import path\n\n"), "imports", 1, "from os"),
    ("relative import", reward("", head="from . import secrets\n\n"), "imports", 1, "from ."),
    ("import star", reward("", head="from numpy import *\n\n"), "imports", 1, "from numpy"),
    # statements outside the contract
    ("class at module level", reward("", tail="\n\nclass Hack:\n    pass\n"), "module level", 7, "class Hack"),
    ("class in a function", reward("    class Hack:\n        pass\n"), "syntax", 4, "class Hack"),
    ("try/except", reward("    try:\n        x = 1\n    except Exception:\n        x = 0\n"), "syntax", 4, "try:"),
    ("global", reward("    global CACHE\n", head="import numpy as np\nCACHE = []\n"), "syntax", 4, "global CACHE"),
    ("with", reward("    with state as s:\n        pass\n"), "syntax", 4, "with state"),
    ("raise", reward("    raise ValueError('x')\n"), "syntax", 4, "raise"),
    ("del", reward("    x = 1\n    del x\n"), "syntax", 5, "del x"),
    ("decorator", reward("", tail="\n\n@np.vectorize\ndef helper(x):\n    return x\n"), "syntax", 7, "np.vectorize"),
    ("bytes literal", reward("    b = b'\\x00'\n"), "syntax", 4, "b'"),
    ("module-level loop", reward("", tail="\n\nfor i in range(3):\n    pass\n"), "module level", 7, "for i"),
    (
        "module-level call",
        reward("", tail="\n\ncompute_reward(None, None)\n"),
        "module level",
        7,
        "compute_reward(None",
    ),
    # the entry point
    ("no entry point", HEAD + "def reward(state, action):\n" + RETURN, "entry point", 1, ""),
    ("wrong signature", HEAD + "def compute_reward(state):\n" + RETURN, "entry point", 3, "def compute_reward"),
    ("syntax error", HEAD + "def compute_reward(state, action)\n" + RETURN, "syntax", 3, ""),
]


def _location(message: str) -> tuple[int, int]:
    found = re.search(r"line (\d+), column (\d+)", message)
    assert found, f"no line/column in: {message}"
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize(
    ("source", "rule", "line", "points_at"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_an_escape_attempt_is_rejected_with_its_rule_and_place(
    source: str, rule: str, line: int, points_at: str
) -> None:
    with pytest.raises(ProgramRejected) as info:
        check_source(source, "reward")
    message = str(info.value)
    first = info.value.violations[0]
    assert first.rule == rule, message
    assert f"[rule: {rule}]" in message
    reported_line, column = _location(message)
    assert reported_line == line, message
    code = source.splitlines()[line - 1]
    assert code[column - 1 :].startswith(points_at), f"column {column} of {code!r} is not at {points_at!r}"
    assert "compute_reward(state, action)" in message  # the contract, restated for whoever fixes it


def test_every_broken_rule_is_listed_not_only_the_first() -> None:
    source = reward("    v = getattr(state, 'x')\n    w = np.load('w.npy')\n", head="import os\nimport numpy as np\n")
    with pytest.raises(ProgramRejected) as info:
        check_source(source)
    assert [v.rule for v in info.value.violations] == ["imports", "builtins", "attributes"]
    assert "Also:" in str(info.value) and "`.load` is not allowed" in str(info.value)


def test_a_fitness_program_needs_compute_fitness() -> None:
    with pytest.raises(ProgramRejected, match=r"no top-level `def compute_fitness\(traj\):`") as info:
        check_source(reward(""), "fitness")
    assert info.value.kind == "fitness"
    check_source(
        "import numpy as np\n\ndef compute_fitness(traj):\n    return float(np.sum(traj.x_velocity))\n", "fitness"
    )


@pytest.mark.timeout(30)
def test_a_program_with_thousands_of_violations_is_rejected_at_once_listing_twenty() -> None:
    # 100 KB with 33,000 violations: listing and locating every one took minutes (quadratic in both).
    source = reward("    x = (" + "__," * 33_000 + ")\n")
    assert len(source) < 100_000
    started = time.perf_counter()
    with pytest.raises(ProgramRejected) as info:
        check_source(source)
    assert time.perf_counter() - started < 5.0
    assert len(info.value.violations) == 20 and info.value.more == 32_980
    message = str(info.value)
    assert "There are 32,995 more problems of these kinds" in message
    assert len(message) < 2_000


def test_a_long_line_and_a_long_name_are_quoted_short() -> None:
    name = "__" + "x" * 50_000
    with pytest.raises(ProgramRejected) as info:
        check_source(reward(f"    v = {name} + 1\n"))
    message = str(info.value)
    assert len(message) < 1_000 and "__xxxxxxxx" in message and "..." in message


def test_a_snippet_shows_no_terminal_escapes() -> None:
    with pytest.raises(ProgramRejected) as info:
        check_source(reward("", tail="\n\nnp.where('\x1b]0;pwned\x07')\n"))
    message = str(info.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "np.where('\\x1b]0;pwned\\x07')" in message


@pytest.mark.parametrize("source", ["", "   \n", "x" * 100_001], ids=["empty", "blank", "too long"])
def test_empty_and_oversized_programs_are_rejected(source: str) -> None:
    with pytest.raises(ProgramRejected):
        check_source(source)


# ---------------------------------------------------------------- sound programs

SOUND = {
    "helpers and constants": (
        "import math\nimport numpy as np\n\nSPEED_WEIGHT = 2.0\nTARGETS = [0.5 * i for i in range(3)]\n"
        "LIMITS = {'low': -1.0, 'high': 1.0}\n\n\n"
        "def _tanh_speed(v, temp=0.3):\n    return np.tanh(temp * v)\n\n\n"
        "def compute_reward(state, action):\n"
        '    """Run forward, smoothly."""\n'
        "    forward = SPEED_WEIGHT * _tanh_speed(state.x_velocity)\n"
        "    near = np.min(np.stack([np.abs(state.z_position - t) for t in TARGETS]), axis=0)\n"
        "    upright = np.where(state.upright > math.cos(math.pi / 4), 1.0, 0.0)\n"
        "    alive = state.is_healthy.astype(np.float64)\n"
        "    effort = 0.1 * np.sum(np.clip(action, LIMITS['low'], LIMITS['high']) ** 2, axis=-1)\n"
        "    reward = forward - 0.1 * near + upright + alive - effort\n"
        "    return reward, {'forward': forward, 'near': -0.1 * near, 'upright': upright, 'alive': alive, "
        "'effort': -effort}\n"
    ),
    "from numpy import where": (
        "from numpy import where, clip\nimport numpy as np\n\n\ndef compute_reward(state, action):\n"
        "    bonus = where(state.x_velocity > 1.0, 1.0, 0.0)\n    speed = clip(state.x_velocity, -3.0, 3.0)\n"
        "    return speed + bonus, {'speed': speed, 'bonus': bonus}\n"
    ),
    "annotations, f-strings, loops over constants": (
        "import numpy as np\n\nNAMES = ('a', 'b')\n\n\ndef compute_reward(state, action: np.ndarray) -> tuple:\n"
        "    parts = {}\n    for i, name in enumerate(NAMES):\n        parts[f'term_{name}'] = (i + 1) * state.x_velocity\n"
        "    total = parts['term_a'] + parts['term_b']\n"
        "    assert isinstance(total, np.ndarray)\n"
        "    return total, parts\n"
    ),
}

FIXTURES = {
    "cheetah_forward": "HalfCheetah-v5",
    "cheetah_forward_v2": "HalfCheetah-v5",
    "cheetah_helpers": "HalfCheetah-v5",
    "cheetah_flip_hack": "HalfCheetah-v5",
    "hopper_backflip": "Hopper-v5",
}


def fenced_python(path: Path) -> str:
    """Every ```python block of a scripted LLM answer, joined in order."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    assert blocks, f"{path.name} has no python block"
    return "\n\n".join(blocks)


@pytest.mark.parametrize("name", list(SOUND))
def test_a_sound_program_is_accepted_and_runs(name: str) -> None:
    report = dry_run_reward("Hopper-v5", SOUND[name])
    assert report.components
    assert not any("add up" in w for w in report.warnings)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_every_sound_llm_answer_in_the_fixtures_is_accepted(name: str, llm_fixtures: Path) -> None:
    source = fenced_python(llm_fixtures / f"{name}.md")
    check_source(source, "reward")
    report = dry_run_reward(FIXTURES[name], source)
    assert report.states > 0 and len(report.components) >= 2


# ------------------------------------------- what the static check lets through fails at run time


def test_the_numpy_facade_names_what_is_missing() -> None:
    for attr in ("random", "lib", "load", "ctypeslib", "fft", "core", "fromregex", "seterr"):
        with pytest.raises(AttributeError, match=rf"np\.{attr} is not available in reward programs"):
            getattr(NUMPY, attr)
    with pytest.raises(AttributeError, match="read-only"):
        NUMPY.pi = 3.0  # type: ignore[misc]
    assert NUMPY.where is np.where and NUMPY.linalg.norm is np.linalg.norm


def test_the_builtins_hold_no_way_out() -> None:
    b = safe_builtins()
    for name in ("open", "eval", "exec", "compile", "getattr", "globals", "vars", "type", "object", "print", "input"):
        assert name not in b
    with pytest.raises(ImportError, match="only `numpy` and `math`"):
        b["__import__"]("os")
    assert b["__import__"]("numpy") is NUMPY


# ------------------------------------------- numpy: one list of names for the static check and the facade

MISSING_FROM_THE_FACADE = sorted(
    n for n in dir(np) if not n.startswith("_") and n not in NUMPY_NAMES and n not in NUMPY_SUBMODULES
)


def test_the_facade_holds_exactly_the_names_the_static_check_allows() -> None:
    members = object.__getattribute__(NUMPY, "_members")
    assert set(members) == {*NUMPY_NAMES, *NUMPY_SUBMODULES}
    assert set(object.__getattribute__(members["linalg"], "_members")) == set(LINALG_NAMES)
    assert "fromregex" in MISSING_FROM_THE_FACADE and len(MISSING_FROM_THE_FACADE) > 300


@pytest.mark.parametrize(
    "head",
    ["import numpy as np\n", "import numpy\nimport numpy as np\n"],
    ids=["np", "numpy and np"],
)
def test_every_numpy_name_the_facade_lacks_is_refused_by_the_static_check(head: str) -> None:
    # np.fromregex('/etc/hostname', ...) passed the static check: only the sandbox's facade stopped it, and an
    # exported wrapper runs the program with the real numpy.
    for name in MISSING_FROM_THE_FACADE:
        module = "numpy" if head.startswith("import numpy\n") else "np"
        with pytest.raises(ProgramRejected) as info:
            check_source(reward(f"    v = {module}.{name}\n", head=head))
        assert info.value.violations[0].rule in ("numpy", "attributes"), name
        assert info.value.violations[0].line == head.count("\n") + 2, name
    for name in LINALG_NAMES:
        check_source(reward(f"    v = np.linalg.{name}\n"))
    for name in NUMPY_NAMES:
        check_source(reward(f"    v = np.{name}\n"))


@pytest.mark.parametrize(
    ("body", "head", "expected"),
    [
        ("    rows = np.fromregex('/etc/hostname', '(.*)', [('x', 'U64')])\n", HEAD, "`np.fromregex` is not available"),
        ("    v = np.linalg.lapack_lite\n", HEAD, "`np.linalg.lapack_lite` is not available"),
        ("    v = la.lapack_lite\n", "from numpy import linalg as la\n", "`la.lapack_lite` is not available"),
        ("    v = numpy.polynomial\n", "import numpy\n", "`numpy.polynomial` is not available"),
        ("    m = np\n    v = m.fromregex\n", HEAD, "`np` (numpy) may only be used as `np.name`"),
        ("    v = [np][0].fromregex\n", HEAD, "`np` (numpy) may only be used as `np.name`"),
        ("    v = (lambda m: m.fromregex)(np)\n", HEAD, "`np` (numpy) may only be used as `np.name`"),
        ("    la = np.linalg\n", HEAD, "`np.linalg` may only be used as `np.linalg.name`"),
        ("", "from numpy import fromregex\n", "`np.fromregex` is not available"),
        ("", "from numpy import fft\n", "`np.fft` is not available"),
        ("    raw = np.ndarray((4,), np.float64, buffer=action, offset=-800)\n", HEAD, "`np.ndarray(...)` cannot"),
        ("    np.add.at(action, [0], 1.0)\n", HEAD, "`.at` is not allowed"),
        ("    m = np.zeros(1).dtype.metadata\n", HEAD, "`.metadata` is not allowed"),
    ],
    ids=[
        "np.fromregex",
        "np.linalg.lapack_lite",
        "linalg alias",
        "numpy.polynomial",
        "numpy bound to a name",
        "numpy in a list",
        "numpy passed",
        "np.linalg bound to a name",
        "from numpy import fromregex",
        "from numpy import fft",
        "ndarray buffer offset",
        "ufunc.at",
        "dtype metadata",
    ],
)
def test_a_way_around_the_numpy_list_is_refused_statically(body: str, head: str, expected: str) -> None:
    with pytest.raises(ProgramRejected) as info:
        check_source(reward(body, head=head))
    assert expected in str(info.value)


def test_the_facade_still_names_what_is_missing_at_run_time() -> None:
    program = load_program(reward("    f = np.where\n"))  # a name the facade has
    state = type("S", (), {"x_velocity": np.zeros(2)})()
    call_reward(program, state, np.zeros((2, 3)))
    with pytest.raises(AttributeError, match=r"np\.fromregex is not available in reward programs"):
        NUMPY.fromregex  # noqa: B018
    assert math.pi == 3.141592653589793 and np.pi == 3.141592653589793


def test_isinstance_with_np_ndarray_still_works() -> None:
    program = load_program(reward("    assert isinstance(state.x_velocity, np.ndarray)\n"))
    state = type("S", (), {"x_velocity": np.ones(3)})()
    reward_values, _, _ = call_reward(program, state, np.zeros((3, 2)))
    assert reward_values.tolist() == [1.0, 1.0, 1.0]


# ------------------------------------------- lines, nesting and constants too big to compute


def test_a_snippet_is_the_line_the_tokenizer_numbers_whatever_line_breaks_a_comment_holds() -> None:
    # str.splitlines() also breaks at U+2028 (and form feeds, \x1c-\x1e, \x85): line 4 would have been text of
    # the attacker's choosing instead of the offending import.
    for sep in ("\u2028", "\u2029", "\x0c", "\x1c", "\x85", "\x0b"):
        source = reward("", head=f"import numpy as np\n# fine{sep}all checks passed: accepted\nimport os\n")
        with pytest.raises(ProgramRejected) as info:
            check_source(source)
        first = info.value.violations[0]
        assert (first.line, first.snippet) == (3, "import os"), repr(sep)
        assert "accepted" not in str(info.value)
    for sep in ("\r", "\r\n"):  # line breaks the tokenizer does count
        source = reward("", head=f"import numpy as np{sep}# fine{sep}import os{sep}")
        with pytest.raises(ProgramRejected) as info:
            check_source(source)
        assert (info.value.violations[0].line, info.value.violations[0].snippet) == (3, "import os")


@pytest.mark.parametrize(
    "source",
    [
        "x = " + "-" * 99_000 + "1\n",
        "x = " + "+".join(["1"] * 40_000) + "\n",
        "x = " + "not " * 24_000 + "1\n",
    ],
    ids=["99,000 unary minus signs", "a sum of 40,000 terms", "24,000 nots"],
)
def test_a_program_nested_too_deeply_to_parse_says_so_and_what_to_do(source: str) -> None:
    with pytest.raises(ProgramRejected) as info:
        check_source(source + "def compute_reward(state, action):\n    return 1.0, {}\n")
    message = str(info.value)
    assert "the program is too deeply nested to parse" in message and "Write it flatter" in message
    assert "MemoryError: ." not in message and "RecursionError" not in message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("X = 2 ** 10 ** 10", "an integer of about 3,010,299,957 digits"),
        ("X = 10 ** 10 ** 10 ** 10", "an integer of about 10,000,000,000 digits"),
        ("X = (2 ** 70) ** (2 ** 70)", "more than a million billion digits"),
        ("X = 1 << 10 ** 10", "an integer of about 3,010,299,957 digits"),
        ("X = (-7) ** (2 ** 40)", "an integer of"),
        ("X = 'a' * 10 ** 12", "repeats a sequence into 1,000,000,000,000 items"),
        ("X = [0] * 10 ** 10", "repeats a sequence into 10,000,000,000 items"),
        ("X = 10 ** 10 * (0.0,)", "repeats a sequence into 10,000,000,000 items"),
        ("X = b'' + 'ab' * (3 * 10 ** 7)", "repeats a sequence into 60,000,000 items"),
    ],
)
def test_a_constant_too_big_to_compute_is_refused_statically_with_its_line(code: str, expected: str) -> None:
    source = reward(f"    {code}\n")
    started = time.perf_counter()
    with pytest.raises(ProgramRejected) as info:
        check_source(source)
    assert time.perf_counter() - started < 1.0
    violation = next(v for v in info.value.violations if v.rule == "size")
    assert violation.line == 4 and expected in violation.message, violation
    module_level = reward("", head=f"import numpy as np\n{code}\n")
    with pytest.raises(ProgramRejected) as info:
        check_source(module_level)
    assert any(v.rule == "size" and v.line == 2 for v in info.value.violations)


def test_constants_of_ordinary_size_pass() -> None:
    check_source(
        reward(
            "    a = 2 ** 64 + 10 ** 300 + (1 << 200) + 2 ** -3 + 2.0 ** 0.5 + 1e308 * 10 + (-1) ** 10 ** 9\n"
            "    b = [0.0] * 1000 + [1.0] * 3\n    c = 'ab' * 40 + '-' * 1000\n    d = (0,) * 10 ** 6\n"
            "    e = [state.x_velocity] * 3\n    f = 2 ** 10 ** 4\n"
        )
    )


# ------------------------------------------- the check can travel: one module, its text and syntax helpers


def test_the_static_check_imports_only_the_standard_library_and_its_helpers() -> None:
    path = Path(policy.__file__)
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert outside == {"workers.program.text", "workers.program.syntax"}, outside
    for helper in (text, syntax):
        imports = {
            n.names[0].name for n in ast.walk(ast.parse(Path(helper.__file__).read_text())) if isinstance(n, ast.Import)
        }
        assert all(m in sys.stdlib_module_names for m in imports), helper


def test_the_static_check_runs_from_a_copy_of_its_three_files_without_numpy(tmp_path: Path) -> None:
    package = tmp_path / "workers" / "program"
    package.mkdir(parents=True)
    for module in (policy, text, syntax):
        shutil.copy(module.__file__, package)
    (tmp_path / "workers" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    script = (
        "import sys\nsys.modules['numpy'] = None\nsys.path.insert(0, '.')\n"
        "from workers.program.policy import ProgramRejected, check_source\n"
        "check_source('import numpy as np\\ndef compute_reward(state, action):\\n    return np.where(1, 1, 0), {}\\n')\n"
        "try:\n    check_source(\"import numpy as np\\nX = np.fromregex('/etc/hostname', '.', 'U9')\\n"
        'def compute_reward(state, action):\\n    return 1.0, {}\\n")\n'
        "except ProgramRejected as e:\n    print(e.violations[0].rule, e.violations[0].line)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numpy", "2"]


@pytest.mark.parametrize("name", list(STATIC))
def test_every_hostile_program_of_the_static_kind_is_refused_before_it_runs(name: str) -> None:
    with pytest.raises(ProgramRejected) as info:
        load_program(STATIC[name].source)
    assert info.value.stage in ("parse", "static check"), str(info.value)
    assert "accepted" not in str(info.value)  # what a U+2028 line would have quoted
