"""The offline designer on a user robot: its reward terms use only the common fields, so each runs on the test
quadruped, and its first round for every fitness metric the quadruped offers passes the dry run there."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import envs
from app.search.design import offline
from app.search.design.designers import DesignContext, OfflineDesigner
from envs.describe import describe
from envs.fitness import METRICS, metrics_for
from tests.support.robots import QUADRUPED_XML
from workers.engine.dryrun import dry_run_reward

ENV = "offline_quadruped"


@pytest.fixture(scope="module")
def quadruped() -> Iterator[envs.EnvSpec]:
    yield envs.register_user_env(ENV, {"quadruped.xml": QUADRUPED_XML}, {"termination": "height", "episode_steps": 200})
    envs.unregister_user_env(ENV)


def test_every_reward_term_runs_on_the_quadruped(quadruped: envs.EnvSpec) -> None:
    terms = {n: t for n, t in offline.TERMS.items() if n != offline.SIGNAL}
    assert all(offline._available(t, ENV) for t in terms.values())  # it is 3-D and has feet: every term applies
    genome = {"weights": {n: t.default_weight for n, t in terms.items()}, "saturation": {"forward": 2.0}}
    report = dry_run_reward(ENV, offline.render_program(genome))
    assert report.components == list(terms)
    for name, stats in report.component_stats.items():
        assert np.isfinite(list(stats.values())).all(), name
    assert report.component_stats["feet_contact"]["max"] > 0  # its feet touch the floor in the sampled states


@pytest.mark.slow
def test_the_first_round_for_each_metric_the_quadruped_offers_passes_the_dry_run(quadruped: envs.EnvSpec) -> None:
    offered = metrics_for(quadruped)
    assert {m.name for m in offered} == set(METRICS) - {"reach", "push"}  # those read bodies it lacks
    for metric in offered:
        ctx = DesignContext(
            run_id=1,
            iteration=0,
            seed=0,
            env=ENV,
            env_description=describe(quadruped),
            task="make the robot walk forward",
            fitness_name=metric.name,
            fitness_meaning=metric.meaning,
            fitness_source="",
            eval_episodes=1,
        )
        for proposal in OfflineDesigner().propose(ctx, 2):
            assert proposal.error is None and proposal.code
            report = dry_run_reward(ENV, proposal.code)  # raises ProgramRejected with the problem, if any
            assert report.components == list(proposal.design["genome"]["weights"]), metric.name
