"""An S3-compatible bucket as the artifact store (AWS S3, MinIO, Ceph, R2, ...), through boto3.

Credentials and the region come from boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
AWS_DEFAULT_REGION, ~/.aws, an instance or pod role); they are never read, logged or passed on by rewardsmith. A
file's SHA-256 travels as the object's metadata, so that a copy can be verified and skipped when it is already there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.artifacts.base import CHUNK, StoredFile, StoreUnavailable, sha256_of
from app.artifacts.keys import check_key, is_key, parse_url
from workers.program.text import clip

MISSING = ("404", "NoSuchKey", "NotFound")
TRANSFER = TransferConfig(max_concurrency=4)


class S3Store:
    """Files under ``s3://bucket/prefix``; ``endpoint`` for anything but AWS itself (MinIO: http://minio:9000)."""

    def __init__(self, url: str, *, endpoint: str | None = None, connect_timeout: float = 5.0) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.location = f"s3://{self.bucket}/{self.prefix}" + (f" at {endpoint}" if endpoint else "")
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=60,
            retries={"max_attempts": 4, "mode": "standard"},  # backs off between tries of one call
            s3={"addressing_style": "path" if endpoint else "auto"},  # MinIO and most others serve paths, not hosts
        )
        session = boto3.session.Session()
        self.client: Any = session.client("s3", endpoint_url=endpoint, config=config)
        probe = config.merge(Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}))
        self._probe: Any = session.client("s3", endpoint_url=endpoint, config=probe)
        """For ``check``: one quick try, as a readiness probe wants."""

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        """Every failure of a call as ``StoreUnavailable``, saying which store, what was tried and why."""
        try:
            yield
        except ClientError as e:
            error = e.response.get("Error", {})
            raise StoreUnavailable(
                f"the artifact store {self.location} refused to {what}: {error.get('Code', '?')}: "
                f"{clip(str(error.get('Message', '')), 200)}. Check that the bucket exists and that the credentials "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role) may read and write it"
            ) from e
        except (BotoCoreError, Boto3Error, OSError) as e:
            raise StoreUnavailable(
                f"the artifact store {self.location} could not be reached to {what}: {type(e).__name__}: "
                f"{clip(str(e), 200)}. Check REWARDSMITH_ARTIFACTS_URL, AWS_ENDPOINT_URL and the network"
            ) from e

    def put_file(self, key: str, path: Path, *, sha256: str | None = None, move: bool = False) -> None:
        digest = sha256 or sha256_of(path)
        with self._reaching(f"store {key}"):
            self.client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs={"Metadata": {"sha256": digest}}, Config=TRANSFER
            )

    def get_file(self, key: str, path: Path) -> None:
        found = self.stat(key)
        if found is None:
            raise FileNotFoundError(f"no artifact {key} in {self.location}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            with self._reaching(f"read {key}"):
                self.client.download_file(self.bucket, self._key(key), tmp, Config=TRANSFER)
            got = Path(tmp)
            if got.stat().st_size != found.size or (found.sha256 and sha256_of(got) != found.sha256):
                raise StoreUnavailable(
                    f"{key} came back from {self.location} different from what was stored (size or SHA-256); "
                    "the download is retried"
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def stat(self, key: str) -> StoredFile | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in MISSING:
                return None
            with self._reaching(f"look up {key}"):
                raise
        except (BotoCoreError, OSError):
            with self._reaching(f"look up {key}"):
                raise
        return StoredFile(int(head["ContentLength"]), (head.get("Metadata") or {}).get("sha256"))

    def list(self, prefix: str) -> dict[str, int]:
        full = f"{self._key(prefix)}/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        found: dict[str, int] = {}
        with self._reaching(f"list {prefix or 'the store'}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    rel = item["Key"][len(full) :]
                    if is_key(rel):
                        found[rel] = int(item["Size"])
        return found

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        if end <= start:
            return iter(())
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}")[
                "Body"
            ]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(f"no artifact {key} in {self.location}") from e
            with self._reaching(f"read {key}"):
                raise
        except (BotoCoreError, OSError):
            with self._reaching(f"read {key}"):
                raise
        return self._chunks(body, key)

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            with self._reaching(f"read {key}"):
                yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        with self._reaching(f"remove {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def ensure(self) -> None:
        self._find_bucket(self.client)

    def check(self) -> str:
        try:
            self._find_bucket(self._probe)
        except StoreUnavailable as e:
            return f"unreachable: {e.message}"
        return "ok"

    def _find_bucket(self, client: Any) -> None:
        try:
            with self._reaching("find its bucket"):
                client.head_bucket(Bucket=self.bucket)
        except StoreUnavailable as e:
            cause = e.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchBucket",
            ):
                raise StoreUnavailable(
                    f"the artifact store {self.location} has no bucket {self.bucket} (NoSuchBucket): create it "
                    f"(compose's createbucket service does; or `mc mb`, `aws s3 mb s3://{self.bucket}`)"
                ) from cause
            raise
