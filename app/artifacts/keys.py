"""Artifact keys: where a file lives in the store, the same on every backend and every host.

A key is relative and '/'-separated; each part is letters, digits, '.', '_' or '-' (never '.' or '..'). A training's
attempt stores its files under ``run-R/candidate-C/training-T/attempt-K``; trainings recorded before attempts were
numbered have no ``attempt-K`` part. The local store maps a key to ``<data dir>/artifacts/<key>``, a bucket to
``<prefix>/<key>``, so a data dir copied into a bucket keeps every key.
"""

from __future__ import annotations

import re

PART = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MAX_KEY_CHARS = 512
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class BadKey(ValueError):
    """Not a store key (absolute, with '..', or with characters a key does not use)."""


def check_key(key: str) -> str:
    """``key`` when it is a store key; else ``BadKey`` saying what is wrong with it."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise BadKey(f"an artifact key has 1 to {MAX_KEY_CHARS} characters, not {len(key)}")
    for part in key.split("/"):
        if part in (".", "..") or not PART.fullmatch(part):
            raise BadKey(
                f"{key[:80]!r} is not an artifact key: each '/'-separated part is letters, digits, '.', '_' or '-' "
                "(not '.' or '..'), and the key does not start or end with '/'"
            )
    return key


def is_key(key: str) -> bool:
    try:
        check_key(key)
    except BadKey:
        return False
    return True


def join(prefix: str, *names: str) -> str:
    """``prefix/name/...`` as a checked key."""
    return check_key("/".join((prefix, *names)))


def training_key(*, run_id: int, candidate_id: int, training_id: int, attempt: int) -> str:
    """Where attempt ``attempt`` of a training stores its files: one prefix per attempt, so that an attempt that was
    taken over never mixes its files with the one that is recorded."""
    return f"run-{run_id}/candidate-{candidate_id}/training-{training_id}/attempt-{attempt}"


def training_of(key: str) -> str:
    """The training's own prefix of an attempt's key (``.../training-T``), or the key itself when it has no attempt."""
    head, _, last = key.rpartition("/")
    return head if head and last.startswith("attempt-") else key


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``; ``ValueError`` saying what is wrong otherwise."""
    if not url.startswith("s3://"):
        raise ValueError(f"REWARDSMITH_ARTIFACTS_URL must look like s3://bucket/prefix, not {url[:80]!r}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not BUCKET.fullmatch(bucket):
        raise ValueError(
            f"{bucket[:80]!r} in REWARDSMITH_ARTIFACTS_URL is not a bucket name: 3 to 63 lowercase letters, digits, "
            "'.' and '-', starting and ending with a letter or digit"
        )
    if prefix and not is_key(prefix):
        raise ValueError(
            f"the prefix {prefix[:80]!r} in REWARDSMITH_ARTIFACTS_URL has characters a key does not use "
            "(letters, digits, '.', '_', '-' and '/')"
        )
    return bucket, prefix
