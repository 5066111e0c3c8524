"""What the artifact store costs a training and a viewer: the data dir's directory against an S3 bucket.

Issue 21: artifacts in object storage. A worker uploads a training's files when it ends and downloads a policy before
a continued training starts; the API streams files and video ranges from the store. This measures those calls, side
by side, on both backends: the directory store, and an S3-compatible server on loopback (moto's server mode, the
`moto_server` of the dev extra, started here). moto is a Python server: its figures are the client path plus a slow
server on the same CPUs, an upper bound for a MinIO on the LAN, not a measurement of AWS.

    .venv/bin/python benchmarks/artifact_store.py            # 20 repetitions of each
    .venv/bin/python benchmarks/artifact_store.py --quick    # 3, to validate
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, machine_info, median, percentile, pyplot, save_figure, write_outputs

NAME = "artifact_store"
TRAINING = {
    "policy.zip": 180_000,
    "vecnormalize.pkl": 12_000,
    "result.json": 6_000,
    "reward.py": 400,
    "tb/events.out.tfevents.1.host.1.0": 700,
    "video.mp4": 1_500_000,
}
"""A tiny training's files, with the sizes a HalfCheetah training of 2,048 steps leaves (video: 300 frames)."""
BIG = 20 * 2**20
"""A long video, streamed whole and read by 64 KiB ranges as a player seeks."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(logs: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=(logs / "moto.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("moto_server did not start (is the dev extra installed?)")


def timed(fn: Callable[[], object], reps: int, before: Callable[[], object] | None = None) -> list[float]:
    """Milliseconds of ``fn`` over ``reps`` calls (``before`` runs untimed ahead of each)."""
    out = []
    for _ in range(reps):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def measure(store, work: Path, reps: int) -> dict:  # type: ignore[no-untyped-def]
    from app.artifacts.transfer import fetch, upload

    rng = random.Random(0)
    contents = {name: rng.randbytes(size) for name, size in TRAINING.items()}
    out = work / "out"
    counter = iter(range(10**6))
    key = "run-1/candidate-1/training-1/attempt-1"

    def lay_out() -> None:
        shutil.rmtree(out, ignore_errors=True)
        for name, data in contents.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)

    def upload_one() -> None:
        upload(store, f"run-1/candidate-1/training-{next(counter)}/attempt-1", out)

    lay_out()
    upload(store, key, out)
    big = work / "big.mp4"
    big.write_bytes(rng.randbytes(BIG))
    store.put_file(f"{key}/long.mp4", big)
    offsets = [rng.randrange(0, BIG - 65536) for _ in range(reps * 5)]
    it = iter(offsets)
    figures = {
        "upload a training (ms)": timed(upload_one, reps, before=lay_out),
        "fetch a policy to continue (ms)": timed(
            lambda: fetch(store, key, work / "in", names=("policy.zip", "vecnormalize.pkl")), reps
        ),
        "64 KiB range of a 20 MiB video (ms)": timed(
            lambda: b"".join(store.read(f"{key}/long.mp4", (o := next(it)), o + 65536)), reps * 5
        ),
        "stream 20 MiB whole (ms)": timed(lambda: sum(len(b) for b in store.read(f"{key}/long.mp4", 0, BIG)), reps),
        "list a training's files (ms)": timed(lambda: store.list(key), reps),
    }
    return {name: {"median": median(v), "p90": percentile(v, 90), "n": len(v)} for name, v in figures.items()}


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    names = list(doc["local"])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for i, backend in enumerate(("local", "s3")):
        values = [doc[backend][n]["median"] for n in names]
        ax.barh([y + i * width for y in range(len(names))], values, width, label=doc["labels"][backend])
    ax.set_yticks([y + width / 2 for y in range(len(names))], names)
    ax.set_xscale("log")
    ax.set_xlabel("median milliseconds (log scale)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(("QUICK: " if doc["quick"] else "") + "artifact store: directory vs S3 (moto on loopback)")
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    reps = 3 if args.quick else args.reps
    doc: dict = {"machine": machine_info(), "quick": args.quick, "reps": reps, "training_files": TRAINING}
    with tempfile.TemporaryDirectory(prefix="rewardsmith-store-bench-") as tmp:
        work = Path(tmp)
        proc, endpoint = start_moto(work)
        try:
            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
            import boto3

            from app.artifacts.local import LocalStore
            from app.artifacts.s3 import S3Store

            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            stores = {"local": LocalStore(work / "artifacts"), "s3": S3Store(f"s3://{bucket}/a", endpoint=endpoint)}
            doc["labels"] = {"local": "directory (data dir)", "s3": "S3 bucket (moto on loopback)"}
            for name, store in stores.items():
                (work / name).mkdir()
                doc[name] = measure(store, work / name, reps)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    doc["machine"]["load_average_at_end"] = os.getloadavg()
    for name in doc["local"]:
        print(f"{name:40s} directory {doc['local'][name]['median']:9.2f}   S3 {doc['s3'][name]['median']:9.2f}")
    write_outputs(args.out, NAME, doc, plot)


if __name__ == "__main__":
    main()
