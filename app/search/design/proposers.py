"""Who proposes a fitness program from a task's sentence: the LLM (a prompt of its own), or the offline designer,
which maps the sentence's words to the closest built-in metric and writes that metric out as a program."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import app.search.design.offline as offline
from app.llm.extraction import ExtractionError, extract_program
from app.llm.store import Purpose
from app.search.design.quantities import Composed, compose
from app.search.rules.states import Origin
from envs import get_spec
from envs.fitness import METRICS, FitnessMetric, metrics_for
from prompts import render
from workers.program.text import clip

if TYPE_CHECKING:
    from app.llm.client import LLMClient


@dataclass
class Earlier:
    """A proposal of this run that was not taken, and why (for the next proposal's prompt)."""

    origin: Origin
    name: str
    answer: str | None
    why: str
    by_person: bool
    """A person asked for another (``why`` is their note); else the checks refused it (``why`` is the message)."""


@dataclass
class FitnessAsk:
    """What a proposer is given: the env, the sentence, and the run's earlier proposals that were not taken."""

    run_id: int | None
    env: str
    env_description: str
    task: str
    earlier: list[Earlier] = field(default_factory=list)


@dataclass
class Draft:
    """One proposed fitness program (or why none could be taken from the answer)."""

    origin: Origin
    author: str
    name: str
    meaning: str
    source: str | None
    answer: str | None = None
    error: str | None = None


class FitnessProposer(Protocol):
    label: str
    repairs: bool
    """Whether a proposal the checks refused is worth sending back for a fix (an LLM's is; the offline one's not)."""

    def propose(self, ask: FitnessAsk) -> Draft: ...


# ----------------------------------------------------------------------------------------------------- offline

WORDS: tuple[tuple[str, str], ...] = (
    ("flips", r"flip|somersault|spin|tumbl|roll over"),
    ("backward_distance", r"\bback(ward)?s?\b|\breverse|\bretreat"),
    ("max_height", r"jump|leap|hop high|\bhigh|height|tall|reach up"),
    ("survival_steps", r"stand|balanc|stay up|upright|surviv|not fall|n't fall|without falling|alive|stable"),
    ("mean_x_velocity", r"fast|speed|quick|velocity|sprint"),
    ("forward_distance", r"forward|\brun|walk|move|\bgo\b|\bfar\b|distance|travel|gallop|trot|crawl|\bhops?\b"),
)
"""Built-in metrics and the words that point to them, most specific first ('backflip' is a flip, not 'back')."""


def closest_metric(text: str, *, exclude: frozenset[str] = frozenset()) -> tuple[FitnessMetric, str | None]:
    """The built-in metric the words of ``text`` point to first (skipping ``exclude``), and the words that chose it;
    forward distance (and None) when no word points anywhere."""
    for name, pattern in WORDS:
        if name in exclude:
            continue
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            start, end = match.start(), match.end()
            while end < len(text) and text[end].isalpha():  # the whole word: 'backwards', not 'back'
                end += 1
            while start > 0 and text[start - 1].isalpha():
                start -= 1
            return METRICS[name], text[start:end]
    fallback = next((m for m in METRICS.values() if m.name not in exclude), METRICS["forward_distance"])
    return fallback, None


class OfflineFitnessProposer:
    """No LLM: the closest built-in metric to the sentence's words (and a person's notes), written out as a program."""

    label = offline.LABEL
    repairs = False

    def propose(self, ask: FitnessAsk) -> Draft:
        inapplicable = {m.name for m in METRICS.values() if m not in metrics_for(get_spec(ask.env))}
        rejected = frozenset({e.name for e in ask.earlier if e.by_person} | inapplicable)
        notes = " ".join(e.why for e in reversed(ask.earlier) if e.by_person)
        composed = next(
            (c for text in (notes, ask.task) if text and (c := compose(text)) is not None and c.specific), None
        )
        if composed is not None and composed.name not in rejected:
            if composed.built_in is None or composed.built_in in rejected:
                return self._composed(composed)
            metric = METRICS[composed.built_in]
            return self._built_in(metric, f"it measures the {composed.meaning.split(',')[0]} the sentence asks for")
        metric, words = closest_metric(notes or ask.task, exclude=rejected)
        if words is None and notes:
            metric, words = closest_metric(ask.task, exclude=rejected)
        if words is None and notes:
            return Draft(
                origin=Origin.OFFLINE,
                author=self.label,
                name="none",
                meaning="no program: the offline designer cannot measure what was asked",
                source=None,
                error=(
                    f"the {self.label} cannot write a program for '{clip(notes, 200)}': no built-in metric fits its "
                    "words and it names no quantity it knows (height, speed, distance, with average, highest, "
                    "lowest, final or at the peaks). Write the program yourself (edit), or configure an LLM."
                ),
            )
        reason = (
            f"chosen for the word{'s' if ' ' in words else ''} '{words}'"
            if words
            else "no word of the task names a behaviour it measures, so it is the default"
        )
        return self._built_in(metric, reason)

    def _built_in(self, metric: FitnessMetric, reason: str) -> Draft:
        header = (
            f"# Proposed by the {self.label}: the built-in metric '{metric.name}'\n# ({metric.meaning}), {reason}.\n"
        )
        return Draft(
            origin=Origin.OFFLINE,
            author=self.label,
            name=metric.name,
            meaning=f"{metric.meaning} (the built-in metric '{metric.name}', {reason})",
            source=header + metric.source,
            answer=None,
        )

    def _composed(self, c: Composed) -> Draft:
        header = f"# Written by the {self.label} for the quantity the sentence names: {c.meaning}.\n"
        return Draft(
            origin=Origin.OFFLINE,
            author=self.label,
            name=c.name,
            meaning=f"{c.meaning} (a program written for the sentence's quantity; no built-in metric measures it)",
            source=header + c.source,
            answer=None,
        )


# ----------------------------------------------------------------------------------------------------- LLM


class LLMFitnessProposer:
    """Asks an OpenAI-compatible chat model for a fitness program (prompts/fitness_*.j2)."""

    repairs = True

    def __init__(self, client: LLMClient, model: str) -> None:
        self.client = client
        self.label = f"LLM designer ({model})"

    def messages(self, ask: FitnessAsk) -> list[dict]:
        """The conversation: the task, then each earlier answer with why it was not taken (so the model fixes it)."""
        user = render(
            "fitness_propose",
            env_description=ask.env_description,
            task=ask.task,
            metrics=metrics_for(get_spec(ask.env)),
            example=METRICS["forward_distance"],
        )
        out = [{"role": "system", "content": render("fitness_system")}, {"role": "user", "content": user}]
        for e in ask.earlier:
            if e.answer is None:  # not the LLM's (an offline proposal before the LLM was configured): skip
                continue
            out.append({"role": "assistant", "content": e.answer})
            out.append({"role": "user", "content": render("fitness_repair", why=e.why, by_person=e.by_person)})
        return out

    def propose(self, ask: FitnessAsk) -> Draft:
        messages = self.messages(ask)
        text = self.client.complete(messages, n=1, purpose=Purpose.FITNESS, run_id=ask.run_id).texts[0]
        origin = Origin.REPAIR if ask.earlier and not ask.earlier[-1].by_person else Origin.LLM
        try:
            extracted = extract_program(text, "compute_fitness")
        except ExtractionError as e:
            return Draft(origin, self.label, "proposed", "", None, text, f"no program could be taken from it: {e}")
        return Draft(origin, self.label, "proposed", meaning_of(extracted.prose), extracted.source, text)


def meaning_of(prose: str) -> str:
    """The answer's first sentence: what the fitness measures, in the model's words."""
    first = re.split(r"(?<=[.!?])\s", prose.strip(), maxsplit=1)[0] if prose.strip() else ""
    return clip(first.replace("\n", " "), 400)
