"""PPO's hyperparameters in SB3's and RL Zoo's terms: one bounded schema that the API, the dashboard and the CLI use.

A task's ``options.train.ppo`` takes SB3's names (``n_steps``, ``batch_size``, ``learning_rate``, ...) and RL Zoo's
conventions: ``lin_<number>`` for a linear schedule of ``learning_rate`` or ``clip_range``; ``policy_kwargs`` limited
to ``net_arch``, ``log_std_init``, ``activation_fn`` (from a fixed set) and ``ortho_init``, as a mapping or as RL
Zoo's ``"dict(...)"`` text (read as literals, never evaluated); ``normalize``; and ``policy: MlpPolicy``.
``read_hyperparams`` reads such a dict from YAML (``yaml.safe_load``) or JSON text: the CLI's ``--hyperparams
FILE`` and the dashboard's textarea. ``check_rollout`` adds the rule that needs the env's defaults: the minibatch
must divide the rollout.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.errors import InvalidInput
from app.search.rules.zoo_text import read_mapping
from envs.spec import ACTIVATIONS, LINEAR, PPODefaults, rate_start

HYPERPARAMS_CHARS = 4000
"""A hyperparameter file or textarea is read up to this many characters (it is user input)."""
MAX_VALUES = 200
"""No more values (keys, numbers, list items) than this in one: a YAML alias cannot expand into millions."""
MAX_ROLLOUT = 131_072
"""The most steps one rollout (n_envs × n_steps) may hold: the buffer lives in the sandbox's memory limit."""
PREFIX = "options.train.ppo"
"""Where the settings live in a task, as errors name them."""


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("ppo_setting", message)


def _rate(value: object) -> float | str:
    """A learning rate or clip range: a number in (0, 1], or ``lin_<number>`` with the number in (0, 1]."""
    if isinstance(value, str) and not value.startswith(LINEAR):
        raise _error(
            f"must be a number or '{LINEAR}<number>' (a linear schedule, e.g. lin_3e-4), got {value[:40]!r}; in YAML "
            "write a number with a dot (3.0e-4) or !!float 3e-4, else it is read as text"
        )
    try:
        start, _ = rate_start(value)  # type: ignore[arg-type]
    except ValueError as e:
        raise _error(str(e)) from None
    if not (math.isfinite(start) and 0.0 < start <= 1.0):
        raise _error(f"must be above 0 and at most 1, got {start:g}")
    return value  # type: ignore[return-value]


def _activation(value: object) -> str:
    """An activation by SB3/PyTorch's class name (ReLU, nn.ReLU) or its snake-case name (relu)."""
    if not isinstance(value, str):
        raise _error(f"must be one of {', '.join(ACTIVATIONS)}")
    name = value.strip().removeprefix("torch.").removeprefix("th.").removeprefix("nn.")
    by_class = {cls.lower(): key for key, cls in ACTIVATIONS.items()}
    key = name.lower() if name.lower() in ACTIVATIONS else by_class.get(name.lower())
    if key is None:
        raise _error(f"must be one of {', '.join(ACTIVATIONS)} (or nn.Tanh, nn.ReLU, ...), got {value[:40]!r}")
    return key


LAYERS = (1, 4)
"""How many hidden layers a network may have; each from 4 to 1024 units."""


def _layers(value: object, what: str) -> tuple[int, ...]:
    ok = (
        isinstance(value, list | tuple)
        and LAYERS[0] <= len(value) <= LAYERS[1]
        and all(isinstance(n, int) and not isinstance(n, bool) and 4 <= n <= 1024 for n in value)
    )
    if not ok:
        raise _error(f"{what}must be 1 to 4 layer sizes from 4 to 1024, such as [64, 64], got {str(value)[:60]}")
    return tuple(value)  # type: ignore[arg-type]


def _net_arch(value: object) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    """Layer sizes shared by the policy and the value function, or ``{"pi": [...], "vf": [...]}``; RL Zoo's older
    ``[dict(pi=..., vf=...)]`` is read as the latter (the form SB3 2 takes)."""
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, dict):
        if set(value) != {"pi", "vf"}:
            raise _error("net_arch as a mapping takes exactly pi and vf, e.g. {pi: [64, 64], vf: [64, 64]}")
        return {k: _layers(value[k], f"{k}: ") for k in ("pi", "vf")}
    return _layers(value, "")


def _mapping_text(value: object) -> object:
    """RL Zoo writes ``policy_kwargs`` (and ``normalize``) as Python text, ``"dict(log_std_init=-2, ...)"``: read its
    literals without evaluating anything."""
    if not isinstance(value, str):
        return value
    try:
        return read_mapping(value)
    except ValueError as e:
        raise _error(str(e)) from None


Rate = Annotated[float | str, BeforeValidator(_rate)]
Activation = Annotated[str, BeforeValidator(_activation)]
NetArch = Annotated[tuple[int, ...] | dict[str, tuple[int, ...]], BeforeValidator(_net_arch)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyKwargs(_Settings):
    """The policy's settings RL Zoo puts in ``policy_kwargs`` (the others SB3 takes are not offered)."""

    net_arch: NetArch | None = Field(None, description="hidden layer sizes, or {pi: [...], vf: [...]}")
    log_std_init: float | None = Field(None, strict=True, ge=-5.0, le=2.0)
    activation_fn: Activation | None = Field(None, description=f"one of {', '.join(ACTIVATIONS)}")
    ortho_init: bool | None = None


class Normalize(_Settings):
    norm_obs: bool = True
    norm_reward: bool = True


class PPOOverrides(_Settings):
    """Changes to the env's PPO defaults (``envs.spec.PPODefaults``) in SB3's names, RL Zoo's conventions accepted;
    unset fields keep the env's value."""

    n_envs: int | None = Field(None, ge=1, le=256, description="parallel envs per training")
    n_steps: int | None = Field(None, ge=8, le=8192, description="steps per env between updates")
    batch_size: int | None = Field(None, ge=8, le=65_536, description="minibatch size; must divide n_envs × n_steps")
    n_epochs: int | None = Field(None, ge=1, le=50)
    learning_rate: Rate | None = Field(None, description="a number, or lin_<number> to decay it linearly to 0")
    gamma: float | None = Field(None, strict=True, ge=0.5, le=0.9999)
    gae_lambda: float | None = Field(None, strict=True, ge=0.0, le=1.0)
    clip_range: Rate | None = Field(None, description="a number, or lin_<number>")
    ent_coef: float | None = Field(None, strict=True, ge=0.0, le=1.0)
    vf_coef: float | None = Field(None, strict=True, ge=0.0, le=10.0)
    max_grad_norm: float | None = Field(None, strict=True, gt=0.0, le=100.0)
    target_kl: float | None = Field(None, strict=True, ge=0.001, le=1.0)
    net_arch: NetArch | None = Field(None, description="hidden layer sizes (also accepted in policy_kwargs)")
    log_std_init: float | None = Field(None, strict=True, ge=-5.0, le=2.0)
    activation_fn: Activation | None = None
    ortho_init: bool | None = None
    policy_kwargs: Annotated[PolicyKwargs | None, BeforeValidator(_mapping_text)] = None
    normalize_obs: bool | None = None
    normalize_reward: bool | None = None
    normalize: Annotated[bool | Normalize | None, BeforeValidator(_mapping_text)] = Field(
        None, description="RL Zoo's: true normalises observations and rewards"
    )
    policy: Literal["MlpPolicy"] | None = Field(None, description="RL Zoo's; the engine's policy is an MLP")

    @model_validator(mode="before")
    @classmethod
    def _not_ours(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "n_timesteps" in raw:
            raise _error("n_timesteps is the task's, not a PPO setting: give it as the task's timesteps")
        return raw

    @model_validator(mode="after")
    def _once(self) -> PPOOverrides:
        kwargs = self.policy_kwargs.model_dump(exclude_none=True) if self.policy_kwargs else {}
        for name in kwargs:
            if getattr(self, name) is not None:
                raise _error(f"{name} is given twice, at the top and in policy_kwargs: keep one")
        if self.normalize is not None and (self.normalize_obs is not None or self.normalize_reward is not None):
            raise _error("normalize and normalize_obs/normalize_reward say the same thing: keep one")
        return self

    def changes(self) -> dict[str, Any]:
        """The settings the user changed, by ``PPODefaults``'s names (RL Zoo's spellings resolved)."""
        out = self.model_dump(exclude_none=True, exclude={"policy_kwargs", "normalize", "policy"})
        if self.policy_kwargs is not None:
            out |= self.policy_kwargs.model_dump(exclude_none=True)
        if isinstance(self.normalize, bool):
            out |= {"normalize_obs": self.normalize, "normalize_reward": self.normalize}
        elif self.normalize is not None:
            out |= {"normalize_obs": self.normalize.norm_obs, "normalize_reward": self.normalize.norm_reward}
        return out


def check_rollout(ppo: PPOOverrides, defaults: PPODefaults, *, env: str) -> None:
    """InvalidInput unless the rollout (n_envs × n_steps, the env's defaults where not set) is at most
    ``MAX_ROLLOUT`` and the minibatch divides it (else SB3 trains on a truncated last minibatch and warns)."""
    set_ = ppo.changes()
    n_envs, n_steps, batch = (set_.get(k, getattr(defaults, k)) for k in ("n_envs", "n_steps", "batch_size"))
    rollout = n_envs * n_steps
    given = ", ".join(f"{k} {set_[k]}" for k in ("n_envs", "n_steps", "batch_size") if k in set_)
    origin = f" ({given}; {env}'s defaults for the rest)" if len(given.split(",")) < 3 else ""
    if rollout > MAX_ROLLOUT:
        raise InvalidInput(
            f"a rollout of n_envs × n_steps = {n_envs} × {n_steps} = {rollout:,} steps{origin} is "
            f"above the {MAX_ROLLOUT:,} a training may hold; lower n_envs or n_steps",
            field=f"{PREFIX}.n_steps",
        )
    if rollout % batch:
        fits = [b for b in (64, 128, 256, 512, 1024, 2048, 4096) if rollout % b == 0 and b <= rollout]
        raise InvalidInput(
            f"batch_size {batch} must divide the rollout of n_envs × n_steps = {n_envs} × {n_steps} = "
            f"{rollout:,}{origin}, else SB3 trains on a truncated last minibatch; "
            + (f"try {', '.join(map(str, fits[-3:]))}" if fits else "choose a divisor of the rollout"),
            field=f"{PREFIX}.batch_size",
        )


def _count(value: object) -> None:
    """Refuse a structure with more than ``MAX_VALUES`` values, counting an alias each time it is used (so a YAML
    alias bomb stops here, after a few hundred steps, rather than expanding)."""
    seen = 0
    stack = [value]
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise InvalidInput(f"the hyperparameters hold more than {MAX_VALUES} values", field=PREFIX)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def read_hyperparams(text: str, *, env: str, source: str = "the hyperparameters") -> dict[str, Any]:
    """The RL Zoo-style dict in ``text`` (YAML read with ``yaml.safe_load``, which JSON is a subset of); a block
    under the env's name (``HalfCheetah-v5: {...}``, as RL Zoo's files have it) is read as that block. InvalidInput
    names ``source`` and what is wrong. The dict is checked where every task is: ``TaskSpec``'s
    ``options.train.ppo``."""
    if len(text) > HYPERPARAMS_CHARS:
        raise InvalidInput(f"{source} is longer than {HYPERPARAMS_CHARS:,} characters", field=PREFIX)
    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise InvalidInput(
            f"{source} is not YAML or JSON{at}: {getattr(e, 'problem', None) or e}", field=PREFIX
        ) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise InvalidInput(f"{source} nests too deeply: settings are a flat mapping", field=PREFIX) from None
    _count(raw)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{source} must be a mapping of settings (n_steps: 512, ...), not a {type(raw).__name__}", field=PREFIX
        )
    if (
        len(raw) == 1
        and isinstance(next(iter(raw.values())), dict)
        and next(iter(raw)) not in PPOOverrides.model_fields
    ):
        name = str(next(iter(raw)))
        if name != env:
            raise InvalidInput(f"{source} holds settings for '{name[:60]}', and the task's env is {env}", field=PREFIX)
        raw = raw[name]
    if any(not isinstance(k, str) for k in raw):
        raise InvalidInput(f"{source}: every key must be a setting's name", field=PREFIX)
    try:  # plain JSON values (a YAML date becomes text, and is refused)
        return json.loads(json.dumps(raw, default=str, allow_nan=False))
    except ValueError:  # a YAML .nan or .inf
        raise InvalidInput(f"{source}: a value is NaN or infinite; give finite numbers", field=PREFIX) from None
