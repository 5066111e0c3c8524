"""Taking the reward (or fitness) program out of a chat answer: prose, several fenced blocks, drafts, truncation.

Every way an answer can fail to hold a program ends in an ``ExtractionError`` whose message is one sentence an
LLM can act on (it goes back to the designer in a repair prompt); nothing is dropped silently.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

from workers.program.syntax import parse_module

PYTHON_LABELS = frozenset({"", "python", "py", "python3", "py3", "numpy"})
"""Fence labels (lower-cased first word of the info string) taken as Python; other labels (bash, json) are skipped."""

_FENCE = re.compile(r"^[ \t]{0,8}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_IMPORT = re.compile(r"^(import\s+\S.*|from\s+\S+\s+import\s+.+)$")


class ExtractionError(ValueError):
    """The answer holds no usable program; the message says why and what to write instead."""


@dataclass
class Extracted:
    """The program taken from an answer."""

    source: str
    """The chosen code blocks joined in order (helpers first, the entry's final definition, trailing helpers)."""
    blocks: int
    """How many fenced blocks went into ``source``."""
    prose: str
    """The answer's text outside all fenced blocks, trimmed, for audit."""
    warnings: list[str] = field(default_factory=list)
    """What was recovered or skipped (a truncated block, a dropped draft, an ignored bash block)."""


@dataclass
class _Block:
    label: str
    code: str
    closed: bool


def _split(text: str) -> tuple[list[_Block], str]:
    """Fenced blocks in order, and the text outside them."""
    blocks: list[_Block] = []
    prose: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            prose.append(lines[i])
            i += 1
            continue
        fence = m["fence"]
        label = (m["info"].split() or [""])[0].lower().strip("{}.")
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            line = lines[i].strip()
            i += 1
            if line.startswith(fence[0] * len(fence)) and not line.strip(fence[0]):
                closed = True
                break
            body.append(lines[i - 1])
        blocks.append(_Block(label, textwrap.dedent("\n".join(body)).strip("\n"), closed))
    return blocks, re.sub(r"\n{3,}", "\n\n", "\n".join(prose)).strip()


def _defines(code: str, entry: str) -> bool:
    return re.search(rf"^def\s+{re.escape(entry)}\s*\(", code, re.M) is not None


def _is_program(code: str) -> bool:
    """Whether a block holds program text (a def, an import, an assignment), not a usage example or output."""
    try:
        tree = parse_module(code)
    except SyntaxError:
        return re.search(r"^(def |class |import |from \S+ import |[A-Za-z_]\w*\s*[-+*/]?=)", code, re.M) is not None
    return any(not isinstance(stmt, ast.Expr) for stmt in tree.body)


def _only_definitions(code: str) -> bool:
    """Whether a block only defines things (safe to run at import time after the entry's definition)."""
    try:
        tree = parse_module(code)
    except SyntaxError:
        return False
    defined = {"np", "numpy", "math"}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.Import, ast.ImportFrom)):
            continue
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
            return False
        used = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
        if not used <= defined:  # e.g. ``reward, parts = compute_reward(state, action)``: a usage example
            return False
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return True


def _signature(entry: str) -> str:
    return {"compute_reward": "compute_reward(state, action)", "compute_fitness": "compute_fitness(traj)"}.get(
        entry, f"{entry}(...)"
    )


def _join(blocks: list[_Block]) -> str:
    """Blocks in order, a repeated top-level import line (``import numpy as np`` in every block) kept once."""
    seen: set[str] = set()
    parts = []
    for b in blocks:
        lines = []
        for line in b.code.split("\n"):
            if _IMPORT.match(line):
                if line.strip() in seen:
                    continue
                seen.add(line.strip())
            lines.append(line)
        parts.append("\n".join(lines).strip("\n"))
    return "\n\n\n".join(p for p in parts if p) + "\n"


def extract_program(text: str, entry: str = "compute_reward") -> Extracted:
    """The program in a chat answer: its fenced Python blocks, the last complete definition of ``entry``.

    Raises ``ExtractionError`` when the answer has no code, unfenced code, or no ``def entry(`` in its code blocks.
    """
    sig = _signature(entry)
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ExtractionError(
            f"the answer is empty; reply with the whole program in one ```python block that defines `def {sig}:`"
        )
    blocks, prose = _split(text)
    warnings: list[str] = []
    if not blocks:
        if re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", text):
            raise ExtractionError(
                f"the answer has `def {entry}(` in plain text, outside a code fence; the code must "
                f"be fenced: put the whole program in one ```python ... ``` block"
            )
        if _is_program(text) and re.search(r"^\s*(def|import|from)\s", text, re.M):
            raise ExtractionError(
                "the answer has code outside a code fence; the code must be fenced: put the whole "
                f"program, defining `def {sig}:`, in one ```python ... ``` block"
            )
        raise ExtractionError(
            f"the answer has no fenced ```python code block; put the whole program, defining "
            f"`def {sig}:`, in one ```python block"
        )

    code: list[_Block] = []
    for b in blocks:
        if not b.code.strip():
            continue
        if b.label in PYTHON_LABELS or _defines(b.code, entry):
            code.append(b)
        else:
            warnings.append(f"ignored a ```{b.label} block (not Python)")
    if not code:
        raise ExtractionError(
            f"the answer's code blocks ({', '.join(sorted({b.label for b in blocks}))}) hold no "
            f"Python; put the whole program, defining `def {sig}:`, in one ```python block"
        )

    with_entry = [i for i, b in enumerate(code) if _defines(b.code, entry)]
    if not with_entry:
        truncated = [b for b in code if not b.closed]
        if truncated:
            raise ExtractionError(
                f"the answer ends inside a code block that was never closed and has no "
                f"`def {entry}(`: it was probably cut off; write a shorter program, defining "
                f"`def {sig}:`, in one complete ```python block"
            )
        if re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", prose):
            raise ExtractionError(
                f"`def {entry}(` appears outside the code blocks; the code must be fenced: put the "
                f"whole program in one ```python block"
            )
        raise ExtractionError(
            f"the code blocks define no `{entry}` function; the program must define "
            f"`def {sig}:` at the top level of a ```python block"
        )

    complete = [i for i in with_entry if code[i].closed]
    last = complete[-1] if complete else with_entry[-1]
    if not code[last].closed:
        warnings.append(
            f"the answer ended inside the code block that defines `{entry}` (no closing ```); it was "
            "taken as it stands and may be cut off"
        )
    elif with_entry[-1] != last:
        warnings.append(
            f"a later definition of `{entry}` was cut off (no closing ```); the last complete one was taken"
        )
    chosen: list[_Block] = []
    for i, b in enumerate(code):
        if i == last:
            chosen.append(b)
        elif i in with_entry:
            if i < last:
                warnings.append(
                    f"an earlier draft of `{entry}` (code block {i + 1}) was dropped; the last complete "
                    "definition was taken"
                )
        elif i < last and _is_program(b.code):
            chosen.append(b)
        elif i < last:
            warnings.append(f"code block {i + 1} holds no definitions (an example or output); it was left out")
        elif b.closed and _only_definitions(b.code):
            chosen.append(b)
        else:
            warnings.append(
                f"code block {i + 1} after `{entry}` is not only definitions (an example or statements); "
                "it was left out"
            )
    return Extracted(source=_join(chosen), blocks=len(chosen), prose=prose, warnings=warnings)
