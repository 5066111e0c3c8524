"""PPO hyperparameters in SB3's and RL Zoo's terms: one schema, read from YAML or JSON text, checked against the env's
defaults, and turned into SB3's objects inside the worker (a ``lin_`` schedule is SB3's LinearSchedule, never eval)."""

from __future__ import annotations

import pytest
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

import envs
from app.errors import InvalidInput
from app.search.rules.hyperparams import MAX_VALUES, check_rollout, read_hyperparams
from app.search.rules.options import parse_options
from envs.spec import ACTIVATIONS, rate_start
from workers.engine.model import ACTIVATION_FNS, policy_kwargs, schedule
from workers.engine.train import ppo_settings

RL_ZOO_HALFCHEETAH = """
# rl-baselines3-zoo's hyperparams/ppo.yml block, as a user would paste it
HalfCheetah-v5:
  normalize: true
  n_envs: 1
  policy: 'MlpPolicy'
  batch_size: 64
  n_steps: 512
  gamma: 0.98
  learning_rate: !!float 2.0633e-05
  ent_coef: 0.000401762
  clip_range: lin_0.1
  n_epochs: 20
  gae_lambda: 0.92
  max_grad_norm: 0.8
  vf_coef: 0.58096
  policy_kwargs: "dict(
                    log_std_init=-2,
                    ortho_init=False,
                    activation_fn=nn.ReLU,
                    net_arch=[dict(pi=[256, 256], vf=[256, 256])]
                  )"
"""


def engine_ppo(raw: dict) -> dict:
    """What the worker is sent for ``raw`` (the task's ``options.train.ppo``)."""
    return parse_options({"train": {"ppo": raw}}).train.engine_options()["ppo"]


def test_an_rl_zoo_block_is_read_without_evaluating_it_and_reaches_the_engine_in_its_names() -> None:
    raw = read_hyperparams(RL_ZOO_HALFCHEETAH, env="HalfCheetah-v5")
    ppo = engine_ppo(raw)
    assert ppo == {
        "n_envs": 1,
        "n_steps": 512,
        "batch_size": 64,
        "n_epochs": 20,
        "learning_rate": 2.0633e-05,
        "gamma": 0.98,
        "gae_lambda": 0.92,
        "clip_range": "lin_0.1",
        "ent_coef": 0.000401762,
        "vf_coef": 0.58096,
        "max_grad_norm": 0.8,
        "net_arch": {"pi": (256, 256), "vf": (256, 256)},
        "log_std_init": -2.0,
        "activation_fn": "relu",
        "ortho_init": False,
        "normalize_obs": True,
        "normalize_reward": True,
    }
    settings = ppo_settings(envs.get_spec("HalfCheetah-v5"), ppo)  # the worker's side
    kwargs = policy_kwargs(settings)
    assert kwargs == {"net_arch": {"pi": [256, 256], "vf": [256, 256]}, "log_std_init": -2.0,
                      "activation_fn": nn.ReLU, "ortho_init": False}  # fmt: skip
    clip = schedule(settings.clip_range)
    assert isinstance(clip, LinearSchedule) and (clip(1.0), clip(0.5), clip(0.0)) == (0.1, 0.05, 0.0)
    assert schedule(settings.learning_rate) == 2.0633e-05


def test_json_and_plain_yaml_give_the_same_settings() -> None:
    as_yaml = "n_steps: 512\nlearning_rate: lin_3e-4\npolicy_kwargs: {net_arch: [64, 64], activation_fn: tanh}\n"
    as_json = '{"n_steps": 512, "learning_rate": "lin_3e-4", "policy_kwargs": {"net_arch": [64, 64], "activation_fn": "nn.Tanh"}}'
    assert engine_ppo(read_hyperparams(as_yaml, env="Hopper-v5")) == engine_ppo(
        read_hyperparams(as_json, env="Hopper-v5")
    )
    assert read_hyperparams("", env="Hopper-v5") == {} and read_hyperparams("# nothing\n", env="Hopper-v5") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("n_steps: [1, 2", ["is not YAML or JSON", "line 1"]),
        ("- n_steps\n- 512\n", ["must be a mapping of settings", "not a list"]),
        ("Hopper-v5:\n  n_steps: 512\n", ["holds settings for 'Hopper-v5'", "the task's env is HalfCheetah-v5"]),
        ("x" * 5000, ["longer than 4,000 characters"]),
        ("1: 2\n", ["every key must be a setting's name"]),
        # a billion laughs: each alias counts each time it is used, so this stops after MAX_VALUES, unexpanded
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n", [f"more than {MAX_VALUES} values"]),
        ("n_steps: !!python/object/apply:os.system ['echo pwned']\n", ["is not YAML or JSON", "python/object"]),
        ("a: " + "[" * 600 + "]" * 600, ["nests too deeply"]),
        ("a: &a [*a]\n", [f"more than {MAX_VALUES} values"]),  # a list that holds itself
    ],
)  # fmt: skip
def test_text_that_is_not_a_mapping_of_settings_is_refused_with_what_to_do(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as e:
        read_hyperparams(text, env="HalfCheetah-v5", source="--hyperparams bad.yml")
    assert e.value.field == "options.train.ppo"
    for word in words:
        assert word in e.value.message, e.value.message


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"learning_rate": "3e-4"}, "learning_rate", ["must be a number or 'lin_<number>'", "!!float 3e-4"]),
        ({"learning_rate": "lin_2"}, "learning_rate", ["above 0 and at most 1, got 2"]),
        ({"clip_range": "lin_nan"}, "clip_range", ["lin_3e-4"]),
        ({"learning_rate": True}, "learning_rate", ["a number or 'lin_<number>'"]),
        ({"learning_rate": "lin_1e-3; import os"}, "learning_rate", ["such as lin_3e-4"]),
        ({"net_arch": [2000]}, "net_arch", ["1 to 4 layer sizes from 4 to 1024"]),
        ({"net_arch": {"pi": [64], "qf": [64]}}, "net_arch", ["exactly pi and vf"]),
        ({"policy_kwargs": {"activation_fn": "nn.Sigmoid"}}, "policy_kwargs.activation_fn", ["tanh, relu, elu"]),
        ({"policy_kwargs": {"squash_output": True}}, "policy_kwargs.squash_output", ["known here: net_arch, log_std_init"]),
        ({"policy_kwargs": "__import__('os').system('echo pwned')"}, "policy_kwargs", ["is not a literal"]),
        ({"policy_kwargs": "dict(**globals())"}, "policy_kwargs", ["'**' is not read"]),
        ({"policy_kwargs": "dict(net_arch=[64] * 4)"}, "policy_kwargs", ["is not a literal"]),
        ({"policy_kwargs": "dict(net_arch=" + "[" * 20 + "]" * 20 + ")"}, "policy_kwargs", ["nests too deeply"]),
        ({"policy_kwargs": "dict(" * 400 + ")" * 400}, "policy_kwargs", ["longer than 1000 characters"]),
        ({"net_arch": [64], "policy_kwargs": {"net_arch": [32]}}, "", ["net_arch is given twice"]),
        ({"normalize": True, "normalize_reward": False}, "", ["keep one"]),
        ({"n_timesteps": 1e6}, "", ["n_timesteps is the task's", "timesteps"]),
        ({"policy": "CnnPolicy"}, "policy", ["'MlpPolicy'"]),
        ({"use_sde": True}, "use_sde", ["known here: n_envs, n_steps, batch_size"]),
        ({"gamma": 1.0}, "gamma", ["less than or equal to 0.9999"]),
        ({"target_kl": 0.0}, "target_kl", ["greater than or equal to 0.001"]),
    ],
)  # fmt: skip
def test_settings_outside_the_schema_are_refused_naming_the_key(raw: dict, field: str, words: list[str]) -> None:
    with pytest.raises(InvalidInput) as e:
        engine_ppo(raw)
    assert e.value.field == "options.train.ppo" + (f".{field}" if field else "")
    for word in words:
        assert word in e.value.message, e.value.message


def test_the_minibatch_must_divide_the_rollout_with_the_envs_defaults_filling_in() -> None:
    hopper = envs.get_spec("Hopper-v5").ppo  # 8 envs x 256 steps, minibatch 256
    check_rollout(
        parse_options({"train": {"ppo": {"n_steps": 256, "batch_size": 512}}}).train.ppo, hopper, env="Hopper-v5"
    )
    with pytest.raises(InvalidInput) as e:
        check_rollout(parse_options({"train": {"ppo": {"batch_size": 300}}}).train.ppo, hopper, env="Hopper-v5")
    assert e.value.field == "options.train.ppo.batch_size"
    assert e.value.message == (
        "batch_size 300 must divide the rollout of n_envs × n_steps = 8 × 256 = 2,048 (batch_size 300; Hopper-v5's "
        "defaults for the rest), else SB3 trains on a truncated last minibatch; try 512, 1024, 2048"
    )
    with pytest.raises(InvalidInput) as e:
        check_rollout(
            parse_options({"train": {"ppo": {"n_envs": 256, "n_steps": 8192}}}).train.ppo, hopper, env="Hopper-v5"
        )
    assert e.value.field == "options.train.ppo.n_steps" and "2,097,152 steps" in e.value.message
    for name in envs.names():  # every env's own defaults pass
        spec = envs.get_spec(name)
        check_rollout(parse_options({}).train.ppo, spec.ppo, env=name)


def test_a_rate_is_a_plain_number_or_lin_and_a_number_never_evaluated() -> None:
    assert rate_start(3e-4) == (3e-4, False) and rate_start("lin_3e-4") == (3e-4, True)
    assert rate_start("lin_.5") == (0.5, True) and rate_start("lin_2.5E-5") == (2.5e-5, True)
    for bad in ("lin_", "lin_1_000", "lin_ 1", "lin_0x10", "lin_1e-3)", "lin_(1)", "exp_1e-3", "lin_inf"):
        with pytest.raises(ValueError, match="'lin_<number>'"):
            rate_start(bad)
    lr = schedule("lin_3e-4")
    assert isinstance(lr, LinearSchedule) and lr(1.0) == pytest.approx(3e-4) and lr(0.25) == pytest.approx(7.5e-5)
    assert set(ACTIVATION_FNS) == set(ACTIVATIONS) and ACTIVATION_FNS["leaky_relu"] is nn.LeakyReLU


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_value_that_is_not_a_finite_number_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        read_hyperparams(f"ent_coef: {value}\n", env="HalfCheetah-v5")
