"""`rewardsmith artifacts copy`: a data dir's artifacts into a bucket, before the installation uses the bucket."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import console, fail, plain
from app.config import get_settings
from app.errors import RewardsmithError

artifacts_app = typer.Typer(help="Move trainings' files between stores.", no_args_is_help=True)


@artifacts_app.command("copy")
def copy(
    to: str = typer.Option(..., "--to", help="The bucket: s3://bucket/prefix (REWARDSMITH_ARTIFACTS_URL afterwards)."),
    source: Path | None = typer.Option(
        None, "--from", help="The artifacts directory (default: <REWARDSMITH_DATA_DIR>/artifacts)."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Name every file."),
) -> None:
    """Copy a data dir's artifacts into an S3-compatible bucket under the same keys, checking each file's size and
    SHA-256; files already there are skipped, so it can be run again (AWS_ENDPOINT_URL and the credentials as for
    the service). Then set REWARDSMITH_ARTIFACTS_URL to the same URL everywhere."""
    from app.artifacts.copy import copy_store
    from app.artifacts.keys import parse_url
    from app.artifacts.local import LocalStore
    from app.artifacts.s3 import S3Store
    from app.artifacts.stores import local_root

    settings = get_settings()
    try:
        parse_url(to)
    except ValueError as e:
        fail(f"--to: {e}")
    root = (source or local_root(settings.data_dir)).expanduser().resolve()
    if not root.is_dir():
        fail(f"there is no artifacts directory at {root}; give it with --from, or set REWARDSMITH_DATA_DIR")
    counts = {"copied": 0, "skipped": 0, "unreadable": 0}

    def on_file(key: str, what: str) -> None:
        counts[what] += 1
        if verbose or what == "unreadable":
            console.print(f"{what:>10}  {plain(key)}", highlight=False)
        elif sum(counts.values()) % 100 == 0:
            console.print(f"{sum(counts.values()):,} files ...", highlight=False)

    try:
        dest = S3Store(to, endpoint=settings.artifacts_endpoint_url)
        dest.ensure()
        report = copy_store(LocalStore(root), dest, on_file=on_file)
    except RewardsmithError as e:
        fail(f"{e.message}. Files copied so far stay; run the command again to go on.")
    console.print(
        f"copied {report.copied:,} files ({report.bytes_copied / 2**20:,.1f} MiB), {report.skipped:,} already there, "
        f"{report.unreadable:,} unreadable; every file checked (size and SHA-256) in {plain(dest.location)}. "
        f"Now set REWARDSMITH_ARTIFACTS_URL={plain(to)} for the API and every worker.",
        highlight=False,
    )


def register(cli: typer.Typer) -> None:
    cli.add_typer(artifacts_app, name="artifacts")
