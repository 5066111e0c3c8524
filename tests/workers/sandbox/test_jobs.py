"""The sandbox's job kinds are declared once: the union, the names the child accepts, and what it refuses."""

from __future__ import annotations

import typing

import pytest

from workers.sandbox.jobs import KINDS, Job, as_job, env_of


def test_every_member_of_the_union_has_its_kind_listed_once() -> None:
    declared = [typing.get_args(typing.get_type_hints(member)["type"])[0] for member in typing.get_args(Job)]
    assert sorted(declared) == sorted(KINDS) and len(set(KINDS)) == len(KINDS)


def test_an_unknown_kind_is_refused_with_the_kinds_there_are() -> None:
    with pytest.raises(ValueError, match="unknown job type 'unpickle'; the kinds are compile_robot"):
        as_job({"type": "unpickle"})


def test_the_env_of_a_job_is_found_where_its_kind_keeps_it() -> None:
    assert env_of(as_job({"type": "dry_run", "env": "Hopper-v5", "kind": "reward", "source": ""})) == "Hopper-v5"
    assert env_of(as_job({"type": "train", "config": {"env": "Ant-v5"}})) == "Ant-v5"
    assert env_of(as_job({"type": "train", "config": {"env": 3}})) == ""
    assert env_of(as_job({"type": "render_robot", "robot": {}, "width": 1, "height": 1})) == ""
