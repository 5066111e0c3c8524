"""The critic: static check and sandboxed dry run of every proposal, the trajectory screen (does the reward prefer
the run's recorded episodes that the fitness prefers?), repairs by the designer, an optional LLM review.

A rejected proposal goes back to the designer with the error (bounded attempts), so the
error reaches the LLM even when it sampled several candidates at once. A screened-out one is not trained: its
error says in words which recorded episode its reward wrongly prefers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from app.errors import LLMError
from app.search.design.designers import DesignContext, Designer, Proposal
from app.search.rules.states import Origin
from workers.engine.screen import REFUSED, ScreenVerdict
from workers.program.text import clip, one_line
from workers.sandbox.runner import Outcome, SandboxResult


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass
class Vetted:
    """A proposal after the critic: accepted with its dry run, or rejected with the reason."""

    status: Verdict
    code: str | None
    answer: str
    origin: Origin
    error: str | None = None
    notes: list[dict] = field(default_factory=list)
    dry_run: dict = field(default_factory=dict)
    design: dict = field(default_factory=dict)
    repairs: int = 0
    screen: dict | None = None
    """The trajectory screen's verdict on the program as it stands (``workers.engine.screen``); None: not screened."""

    @property
    def screened_out(self) -> bool:
        """Rejected by the trajectory screen (the training it would have cost was saved)."""
        return self.status == Verdict.REJECTED and self.screen is not None and not screen_trains(self.screen)


SCREEN_TEXT_CHARS = 1500
"""The longest screen sentence kept (a real one is a few hundred characters)."""
SCREEN_EPISODES = 512
"""The most per-episode values kept of one screen (32 files of 16 episodes)."""


def screen_record(payload: object) -> dict | None:
    """The screen's verdict as the sandbox sent it, checked and bounded before anything keeps or shows it: a known
    verdict, one printable line of text, finite rhos in [-1, 1], bounded lists of finite numbers; None when it is
    not one."""
    if not isinstance(payload, dict):
        return None
    try:
        verdict = ScreenVerdict(str(payload.get("verdict")))
    except ValueError:
        return None
    rho = payload.get("rho")
    numbers = {}
    for name in ("returns", "fitness"):
        values = payload.get(name)
        if not isinstance(values, list) or len(values) > SCREEN_EPISODES:
            return None
        if not all(_finite(v) for v in values):
            return None
        numbers[name] = [float(v) for v in values]
    episodes = payload.get("episodes")
    if not isinstance(episodes, int) or isinstance(episodes, bool) or not 0 <= episodes <= SCREEN_EPISODES:
        return None
    parent_rho = payload.get("parent_rho")
    if not all(r is None or _a_rho(r) for r in (rho, parent_rho)):
        return None
    return {
        "verdict": verdict.value,
        "text": clip(one_line(str(payload.get("text"))), SCREEN_TEXT_CHARS),
        "rho": None if rho is None else float(rho),
        "parent_rho": None if parent_rho is None else float(parent_rho),
        "episodes": episodes,
        **numbers,
    }


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _a_rho(value: object) -> bool:
    return _finite(value) and isinstance(value, int | float) and -1 <= value <= 1


def screen_trains(screen: dict) -> bool:
    """Whether a screen verdict lets its candidate train."""
    return ScreenVerdict.trains_on(screen)


def dry_run_text(report: dict) -> str:
    """A compact account of a dry run for the critic prompt and the dashboard."""
    lines = [f"{report.get('states', 0)} sampled states."]
    r = report.get("reward") or {}
    if r:
        lines.append(f"reward: mean {r['mean']:.3g}, min {r['min']:.3g}, max {r['max']:.3g}")
    for name, s in (report.get("component_stats") or {}).items():
        lines.append(f"{name}: mean {s['mean']:.3g}, min {s['min']:.3g}, max {s['max']:.3g}")
    for w in report.get("warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _rejected(proposal: Proposal, error: str, notes: list[dict], repairs: int, screen: dict | None) -> Vetted:
    return Vetted(
        Verdict.REJECTED,
        proposal.code,
        proposal.answer,
        proposal.origin,
        error,
        notes,
        {},
        proposal.design,
        repairs,
        screen,
    )


def vet(
    proposal: Proposal,
    ctx: DesignContext,
    designer: Designer,
    *,
    check: Callable[[str], SandboxResult],
    max_repairs: int = 2,
    review_rounds: int = 1,
) -> Vetted:
    """Check ``proposal`` (repairing it through ``designer`` when rejected), then let the designer review it."""
    notes: list[dict] = []
    current = proposal
    repairs = 0
    while True:
        screen = None
        if current.code is None:
            error = current.error or "the answer held no program"
            report = None
            notes.append({"stage": "check", "verdict": "rejected", "text": error})
        else:
            res = check(current.code)
            screen = screen_record(res.payload.get("screen")) if res.outcome == Outcome.OK else None
            if res.outcome == Outcome.OK and "screen" in res.payload and screen is None:
                res = SandboxResult(Outcome.FAILED, "the trajectory screen sent back a verdict that is not one")
            if res.outcome == Outcome.OK and (screen is None or screen_trains(screen)):
                report = res.payload.get("report", {})
                break
            if screen is not None:  # it passed the dry run, but prefers the recorded episodes the fitness does not
                error = REFUSED + str(screen.get("text"))
                notes.append(
                    {"stage": "screen", "verdict": str(screen.get("verdict")), "text": str(screen.get("text"))}
                )
            else:
                error = res.error or res.outcome
                notes.append({"stage": "check", "verdict": "rejected", "text": error})
        if repairs >= max_repairs:
            return _rejected(current, error, notes, repairs, screen)
        try:
            fixed = designer.repair(ctx, current, error)
        except LLMError as e:
            notes.append({"stage": "repair", "verdict": "failed", "text": str(e)})
            fixed = None
        if fixed is None:
            return _rejected(current, error, notes, repairs, screen)
        repairs += 1
        notes.append(
            {"stage": "repair", "verdict": "proposed", "text": f"repair attempt {repairs} after: {error[:300]}"}
        )
        current = fixed
    notes.append({"stage": "check", "verdict": "accepted", "text": dry_run_text(report)})
    if screen is not None:
        notes.append({"stage": "screen", "verdict": str(screen.get("verdict")), "text": str(screen.get("text"))})
    code, origin = current.code, current.origin
    for _ in range(review_rounds):
        try:
            review = designer.review(ctx, code, dry_run_text(report))
        except LLMError as e:
            notes.append({"stage": "review", "verdict": "skipped", "text": f"the LLM review failed: {e}"})
            break
        if review is None:
            break
        notes.append({"stage": "review", "verdict": review.verdict, "text": "; ".join(review.reasons)})
        if review.verdict == "accept":
            break
        if not review.fixed_code:
            return Vetted(
                Verdict.REJECTED,
                code,
                current.answer,
                origin,
                "the critic rejected it: " + "; ".join(review.reasons),
                notes,
                report,
                current.design,
                repairs,
                screen,
            )
        res = check(review.fixed_code)
        fixed_screen = screen_record(res.payload.get("screen")) if res.outcome == Outcome.OK else None
        if res.outcome != Outcome.OK or (fixed_screen is not None and not screen_trains(fixed_screen)):
            why = res.error or res.outcome if fixed_screen is None else REFUSED + str(fixed_screen.get("text"))
            notes.append({"stage": "review", "verdict": "fix rejected", "text": why})
            break
        code, origin, report, screen = review.fixed_code, Origin.CRITIC, res.payload.get("report", {}), fixed_screen
        notes.append(
            {"stage": "review", "verdict": "fixed", "text": "the critic's corrected program passed the checks"}
        )
    return Vetted(Verdict.ACCEPTED, code, current.answer, origin, None, notes, report, current.design, repairs, screen)
