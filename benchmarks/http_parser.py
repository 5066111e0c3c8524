"""What `serve`'s HTTP limits cost: uvicorn's default parser (httptools, no cap on a request head) against the h11
parser with `serve`'s guarded protocol (`app/cli/http.py`: a 64 KiB head cap, a head deadline, a connection cap),
side by side on the same app and database.

Starts the real app (create_app on an SQLite database of its own, one user) twice on loopback, once per parser,
each in a subprocess of its own, and drives GET /healthz (the HTTP layer alone) and GET /api/v1/tasks (a token
lookup and a query) with concurrent httpx clients. Rounds alternate the order of the two servers; the figures are
requests per second and p50/p99 latency, and the ratio guarded / httptools.

The load generator shares the machine's CPUs with the server; on a small machine its own cost is in the figures.

    .venv/bin/python benchmarks/http_parser.py            # 20 clients, 3 rounds of 2,000 requests per endpoint
    .venv/bin/python benchmarks/http_parser.py --quick    # 5 clients, 1 round of 200, to validate
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, load_average, machine_info, percentile, pyplot, save_figure, write_outputs

NAME = "http_parser"
MODES = ("httptools", "guarded h11")
ENDPOINTS = ("/healthz", "/api/v1/tasks")


def serve(mode: str, port: int, data: Path) -> None:
    """The server process: the real app on ``data``, with uvicorn's default parser or `serve`'s options."""
    import uvicorn

    from app.cli.http import uvicorn_options
    from app.config import get_settings
    from app.main import create_app

    settings = get_settings()
    options = uvicorn_options(settings) if mode == "guarded h11" else {"http": "httptools"}
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning", **options)


def start(mode: str, data: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    from tests.support.server import free_port

    port = free_port()
    env = {**os.environ, "REWARDSMITH_DATA_DIR": str(data), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the {mode} server did not start")


async def drive(url: str, path: str, token: str, clients: int, requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    left = [requests]
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
            while left[0] > 0:
                left[0] -= 1
                t0 = time.perf_counter()
                r = await c.get(path)
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text

    start_time = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start_time
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / wall,
        "p50_ms": 1000 * (percentile(latencies, 50) or 0),
        "p99_ms": 1000 * (percentile(latencies, 99) or 0),
    }


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for i, mode in enumerate(MODES):
        values = [doc["summary"][endpoint][mode]["per_second"] for endpoint in ENDPOINTS]
        ax.bar([x + i * width for x in range(len(ENDPOINTS))], values, width, label=mode)
    ax.set_xticks([x + width / 2 for x in range(len(ENDPOINTS))], list(ENDPOINTS))
    ax.set_ylabel("requests / s (median of rounds)")
    ax.set_title(("QUICK " if doc["quick"] else "") + f"{doc['clients']} concurrent clients, loopback")
    ax.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000, help="per endpoint, per server, per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, Path(os.environ["REWARDSMITH_DATA_DIR"]))
        return {}
    if args.quick:
        args.clients, args.requests, args.rounds = 5, 200, 1
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = {**os.environ, "REWARDSMITH_DATA_DIR": str(data)}
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", "users", "create", "bench"], env=env, capture_output=True, text=True
        )
        token = out.stdout.strip().split()[-1]
        rounds: list[dict] = []
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
                proc, url = start(mode, data)
                try:
                    for endpoint in ENDPOINTS:
                        figures = asyncio.run(drive(url, endpoint, token, args.clients, args.requests))
                        rounds.append({"round": r, "mode": mode, "endpoint": endpoint, **figures})
                        print(
                            f"round {r} {mode:12} {endpoint:15} {figures['per_second']:8.0f} req/s  "
                            f"p50 {figures['p50_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms"
                        )
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    summary: dict = {}
    for endpoint in ENDPOINTS:
        summary[endpoint] = {}
        for mode in MODES:
            rows = [x for x in rounds if x["endpoint"] == endpoint and x["mode"] == mode]
            summary[endpoint][mode] = {
                k: percentile([x[k] for x in rows], 50) for k in ("per_second", "p50_ms", "p99_ms")
            }
        ratio = summary[endpoint]["guarded h11"]["per_second"] / summary[endpoint]["httptools"]["per_second"]
        summary[endpoint]["ratio_guarded_to_httptools"] = ratio
        print(f"{endpoint}: guarded h11 / httptools = {ratio:.2f} (requests per second, median of rounds)")
    machine["load_average_at_end"] = load_average()
    doc = {"quick": args.quick, "clients": args.clients, "rounds": rounds, "summary": summary, "machine": machine}
    write_outputs(args.out, NAME, doc, plot)
    return doc


if __name__ == "__main__":
    main()
