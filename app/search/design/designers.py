"""Designers write candidate reward programs: the LLM designer (any OpenAI-compatible endpoint) and the offline one."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import app.search.design.offline as offline
import app.search.design.steering as steering
import app.search.design.verdict as verdict
from app.llm.extraction import ExtractionError, extract_program
from app.llm.store import Purpose
from app.search.design.diagnostics import STUCK, Code, Finding, RunFinding
from app.search.rules.states import DesignerKind, Origin
from prompts import render
from workers.engine.screen import REFUSED

if TYPE_CHECKING:
    from app.llm.client import LLMClient


@dataclass
class Parent:
    id: int
    code: str
    fitness: float
    reflection: str
    design: dict = field(default_factory=dict)
    diagnostics: list[Finding] = field(default_factory=list)
    label: str = ""
    """How the prompt names it (see ``app.search.records.candidates.label``)."""


@dataclass
class DesignContext:
    """Everything a designer sees for one round (Markovian: the task, the parent, its reflection, feedback, errors)."""

    run_id: int | None
    iteration: int
    seed: int
    env: str
    env_description: str
    task: str
    fitness_name: str
    fitness_meaning: str
    fitness_source: str
    eval_episodes: int
    parent: Parent | None = None
    feedback: list[dict] = field(default_factory=list)
    others: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    screened: list[dict] = field(default_factory=list)
    """Last round's rewards the trajectory screen refused (not trained), with why in words."""
    run_diagnostics: list[RunFinding] = field(default_factory=list)
    """The run's diagnostics so far (``app.search.design.run_diagnosis``): whether the search is learning at all."""

    def task_vars(self) -> dict:
        return {
            "env_description": self.env_description,
            "task": self.task,
            "fitness_name": self.fitness_name,
            "fitness_meaning": self.fitness_meaning,
            "fitness_source": self.fitness_source,
            "eval_episodes": self.eval_episodes,
        }


@dataclass
class Proposal:
    """One answer from a designer: the program (or why none could be taken from the answer)."""

    code: str | None
    answer: str
    origin: Origin
    error: str | None = None
    design: dict = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)
    """The conversation that produced it (so that a repair can continue it)."""


@dataclass
class Review:
    verdict: str
    reasons: list[str]
    fixed_code: str | None = None


class Designer(Protocol):
    name: DesignerKind
    label: str

    def propose(self, ctx: DesignContext, k: int) -> list[Proposal]: ...

    def repair(self, ctx: DesignContext, proposal: Proposal, error: str) -> Proposal | None: ...

    def review(self, ctx: DesignContext, code: str, dry_run: str) -> Review | None: ...


LEARNER_SIGMA = 0.2
"""The offline designer's weight changes after a training whose only problems were the learner's (0.5 otherwise)."""


class OfflineDesigner:
    """Evolution over the env's reward-term library; no LLM, no tokens."""

    name = DesignerKind.OFFLINE
    label = offline.LABEL

    def propose(self, ctx: DesignContext, k: int) -> list[Proposal]:
        rng = random.Random(hash((ctx.seed, ctx.iteration, ctx.run_id or 0)) & 0xFFFFFFFF)
        if ctx.parent is None or "genome" not in ctx.parent.design:
            genomes = self._first_round(ctx, k, rng)
        else:
            drop = {f["component"] for f in ctx.parent.diagnostics if f["kind"] == Code.CONSTANT and "component" in f}
            # a learner problem alone says little about the reward: stay close to it (weights only)
            learner_only = verdict.verdict(ctx.parent.diagnostics) == verdict.Verdict.LEARNER
            steered, stuck = steering.steer(
                ctx.parent.design["genome"],
                ctx.env,
                feedback=[str(f.get("text") or "") for f in ctx.feedback],
                run_diagnostics=ctx.run_diagnostics,
                learner_problems=verdict.learner_codes(ctx.parent.diagnostics) if learner_only else None,
            )
            notes = steered.get("notes", [])
            sigma = LEARNER_SIGMA if learner_only else 1.0 if stuck else 0.5
            children = [
                offline.mutate(steered, ctx.env, rng, drop=drop, sigma=sigma, keep_terms=learner_only) for _ in range(k)
            ]
            changed = steered["weights"] != ctx.parent.design["genome"]["weights"]
            if notes and changed:  # the first child is the steered parent itself, so the change is tried on its own
                children[0] = {**steered, "weights": {k: v for k, v in steered["weights"].items() if k not in drop}}
            genomes = [{**g, "notes": notes} if notes else g for g in children]
        out = []
        for g in genomes:
            code = offline.render_program(g)
            out.append(Proposal(code, code, Origin.OFFLINE, design={"designer": self.label, "genome": g}))
        return out

    @staticmethod
    def _first_round(ctx: DesignContext, k: int, rng: random.Random) -> list[dict]:
        """The seed genome (from the fitness and the task's words), then, for a fitness program with a per-step
        form, that form with an alive bonus alone, then mutations of the seed."""
        seed = steering.read_intent(ctx.env, ctx.fitness_source) if ctx.fitness_source else None
        base = offline.seed_genome(ctx.env, ctx.fitness_name, ctx.task, seed)
        genomes = [base]
        if base.get("signal") and k > 1:
            # the reference rewards' proportions (an alive bonus as large as the task term, a control cost of 0.1),
            # not the signal doubled: that equals the seed when the seed's task terms are the signal itself
            alive = {"healthy": 1.0} if "healthy" in base["weights"] else {}
            genomes.append(
                {
                    "weights": {offline.SIGNAL: 1.0, "ctrl_cost": 0.1} | alive,
                    "saturation": {},
                    "signal": base["signal"],
                    "notes": ["the fitness's per-step form alone, with the reference reward's control cost"],
                }
            )
        while len(genomes) < k:
            genomes.append({**offline.mutate(base, ctx.env, rng), "notes": base.get("notes", [])})
        return genomes[:k]

    def repair(self, ctx: DesignContext, proposal: Proposal, error: str) -> Proposal | None:
        """Its programs pass the checks by construction; what it repairs is a reward the trajectory screen refused:
        it mutates again, from the parent's genome where there is one (a reward that ranked the episodes well), with
        a wider spread, and says why in the program's notes."""
        genome = proposal.design.get("genome")
        if not error.startswith(REFUSED) or not isinstance(genome, dict):
            return None
        parent = ctx.parent.design.get("genome") if ctx.parent is not None else None
        base = parent if isinstance(parent, dict) else genome
        rng = random.Random(hashlib.sha256((proposal.code or "").encode()).digest())
        child = offline.mutate(base, ctx.env, rng, sigma=1.0)
        notes = [*base.get("notes", []), "mutated again: " + error.removeprefix(REFUSED)][-offline.MAX_NOTES :]
        child = {**child, "notes": notes}
        code = offline.render_program(child)
        return Proposal(code, code, Origin.OFFLINE, design={"designer": self.label, "genome": child})

    def review(self, ctx: DesignContext, code: str, dry_run: str) -> Review | None:
        return None


class LLMDesigner:
    """Asks an OpenAI-compatible chat model for reward programs, repairs and reviews."""

    name = DesignerKind.LLM

    def __init__(self, client: LLMClient, model: str, *, review: bool = False) -> None:
        self.client = client
        self.model = model
        self.label = f"LLM designer ({model})"
        self.reviews = review

    def _messages(self, ctx: DesignContext) -> list[dict]:
        system = render("designer_system")
        if ctx.parent is None:
            user = render("designer_initial", **ctx.task_vars())
        else:
            user = render(
                "designer_iteration",
                **ctx.task_vars(),
                parent=ctx.parent,
                learner_note=verdict.designer_note(ctx.parent.diagnostics),
                feedback=ctx.feedback,
                others=ctx.others,
                run_diagnostics=ctx.run_diagnostics,
                stuck=sorted(STUCK),
                errors=ctx.errors,
                screened=ctx.screened,
            )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _proposal(self, text: str, messages: list[dict], origin: Origin) -> Proposal:
        convo = [*messages, {"role": "assistant", "content": text}]
        try:
            extracted = extract_program(text)
        except ExtractionError as e:
            return Proposal(
                None,
                text,
                origin,
                error=f"no program could be taken from the answer: {e}",
                messages=convo,
                design={"designer": self.label},
            )
        return Proposal(
            extracted.source,
            text,
            origin,
            design={"designer": self.label, "warnings": extracted.warnings},
            messages=convo,
        )

    def propose(self, ctx: DesignContext, k: int) -> list[Proposal]:
        messages = self._messages(ctx)
        completion = self.client.complete(messages, n=k, purpose=Purpose.DESIGN, run_id=ctx.run_id)
        return [self._proposal(t, messages, Origin.LLM) for t in completion.texts]

    def repair(self, ctx: DesignContext, proposal: Proposal, error: str) -> Proposal | None:
        messages = (proposal.messages or self._messages(ctx)) + [
            {"role": "user", "content": render("designer_repair", code=proposal.code or proposal.answer, error=error)}
        ]
        completion = self.client.complete(messages, n=1, purpose=Purpose.REPAIR, run_id=ctx.run_id)
        return self._proposal(completion.texts[0], messages, Origin.REPAIR)

    def review(self, ctx: DesignContext, code: str, dry_run: str) -> Review | None:
        if not self.reviews:
            return None
        prompt = render("critic", code=code, dry_run=dry_run, **ctx.task_vars())
        completion = self.client.complete(
            [{"role": "user", "content": prompt}], n=1, purpose=Purpose.CRITIC, run_id=ctx.run_id
        )
        return parse_review(completion.texts[0])


def parse_review(text: str) -> Review:
    """The critic's verdict from its answer; an unreadable answer counts as 'accept' with the reason recorded."""
    match = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S) or re.search(r"(\{.*\})", text, re.S)
    try:
        data = json.loads(match.group(1)) if match else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("verdict") not in ("accept", "reject"):
        return Review(
            "accept", [f"the critic's answer could not be read as a verdict; accepted unreviewed: {text[:200]!r}"]
        )
    fixed = data.get("fixed_code")
    if isinstance(fixed, str):
        fence = re.search(r"```(?:python)?\n(.*?)```", fixed, re.S)
        fixed = fence.group(1) if fence else fixed
    reasons = data.get("reasons") or []
    return Review(
        data["verdict"],
        [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)],
        fixed if isinstance(fixed, str) and fixed.strip() else None,
    )
