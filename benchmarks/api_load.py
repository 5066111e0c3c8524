"""Latency of GET /api/v1/runs/{id} and POST /api/v1/tasks under concurrent clients, PostgreSQL + Redis.

Issue: "p50/p99 latency of GET /runs/{id} and POST /tasks with 50 concurrent clients against a server on
loopback, PostgreSQL + Redis."

Starts a real server on loopback as a subprocess (`rewardsmith serve --no-embedded-worker`) against a fresh
PostgreSQL database (created here, dropped at the end) and a spare Redis database (must be empty; flushed at the
end), creates an admin user with `rewardsmith users create`, waits for /readyz, then drives it with httpx
AsyncClients: a warm-up, then a GET phase and a POST phase, each bounded by a request count and a time limit.
No worker runs, so created tasks only stay queued (their start message waits in Redis): the POST figure is the
API's own cost (validation, rate-limit query, two inserts, commit, the Celery send to Redis), not a search.

The load generator runs on the same machine as the server and shares its CPUs; on a small machine its own cost
is part of the figures.

    .venv/bin/python benchmarks/api_load.py            # 50 clients, 2,000 GETs, 500 POSTs
    .venv/bin/python benchmarks/api_load.py --quick    # 10 clients, 200 requests of each, to validate
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, ROOT, machine_info, percentile, pyplot, save_figure, write_outputs

NAME = "api_load"
TASK_BODY = {
    "env": "HalfCheetah-v5",
    "description": "bench",
    "designer": "offline",
    "iterations": 1,
    "samples": 1,
    "timesteps": 2048,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rewardsmith_bin() -> str:
    local = Path(sys.executable).with_name("rewardsmith")
    return str(local) if local.exists() else "rewardsmith"


# --------------------------------------------------------------------------------------------- services


class Postgres:
    """A fresh database on the server behind ``admin_url``; dropped on ``drop``."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"rewardsmith_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.created = False

    def _connect(self):
        import psycopg

        return psycopg.connect(self.admin_url, autocommit=True)

    def create(self) -> str:
        with self._connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
            self.version = conn.execute("SHOW server_version").fetchone()[0]
        self.created = True
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{self.name}"

    def drop(self) -> None:
        if not self.created:
            return
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.created = False


class RedisDb:
    """A spare Redis database: refused unless empty, flushed at the end."""

    def __init__(self, host: str, port: int, db: int) -> None:
        import redis

        self.url = f"redis://{host}:{port}/{db}"
        self.client = redis.Redis(host=host, port=port, db=db)
        self.db = db
        self.used = False

    def claim(self) -> None:
        size = self.client.dbsize()
        if size:
            raise SystemExit(
                f"redis database {self.db} holds {size} keys; pick an empty one with --redis-db "
                "(this benchmark flushes the database it uses)"
            )
        self.version = self.client.info("server").get("redis_version")
        self.used = True

    def keys(self) -> int:
        return int(self.client.dbsize())

    def flush(self) -> None:
        if self.used:
            self.client.flushdb()
            self.used = False


class Server:
    """`rewardsmith serve --no-embedded-worker` on loopback."""

    def __init__(self, env: dict, port: int, log: Path) -> None:
        self.env, self.port, self.log_path = env, port, log
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [rewardsmith_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-embedded-worker"],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float) -> float:
        import httpx

        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                r = httpx.get(f"{self.base}/readyz", timeout=2.0)
                if r.status_code == 200:
                    return time.monotonic() - started
                last = r.text
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.25)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s (last: {last[:300]}):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()


# -------------------------------------------------------------------------------------------------- load


async def phase(
    base: str,
    token: str,
    *,
    method: str,
    path: str,
    body: dict | None,
    clients: int,
    requests: int,
    max_seconds: float,
    record: bool = True,
) -> dict:
    """``clients`` concurrent clients (one connection each) share ``requests`` requests or ``max_seconds``."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    issued = 0
    deadline = time.monotonic() + max_seconds

    async def client() -> None:
        nonlocal issued
        async with httpx.AsyncClient(
            base_url=base,
            headers=headers,
            timeout=30.0,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        ) as c:
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                t = time.perf_counter()
                try:
                    r = await c.request(method, path, json=body)
                    code = str(r.status_code)
                    ok = r.is_success
                    if not ok and len(errors) < 10:
                        errors.append(f"{code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    code, ok = type(e).__name__, False
                    if len(errors) < 10:
                        errors.append(repr(e)[:200])
                dt = time.perf_counter() - t
                statuses[code] = statuses.get(code, 0) + 1
                if ok:
                    latencies.append(dt * 1000.0)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    duration = time.perf_counter() - started
    done = sum(statuses.values())
    out = {
        "method": method,
        "path": path,
        "clients": clients,
        "requests_planned": requests,
        "requests": done,
        "ok": len(latencies),
        "errors": done - len(latencies),
        "status_counts": statuses,
        "error_samples": errors,
        "seconds": duration,
        "requests_per_second": done / duration if duration else None,
        "stopped_by_time_limit": done < requests,
    }
    if record:
        out.update({f"{k}_ms": percentile(latencies, q) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))})
        out["max_ms"] = max(latencies) if latencies else None
        out["mean_ms"] = sum(latencies) / len(latencies) if latencies else None
        out["latencies_ms"] = [round(x, 3) for x in latencies]
    return out


# ---------------------------------------------------------------------------------------------- reporting


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"get_run": "#1f77b4", "post_task": "#ff7f0e"}
    labels = {"get_run": "GET /api/v1/runs/{id}", "post_task": "POST /api/v1/tasks"}
    ax = axes[0]
    for key in ("get_run", "post_task"):
        lat = sorted(doc["phases"][key]["latencies_ms"])
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], color=colors[key], label=labels[key])
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("latency, ms (log scale)")
    ax.set_ylabel("fraction of requests")
    ax.axhline(0.5, color="#bbbbbb", lw=0.8, ls=":")
    ax.axhline(0.99, color="#bbbbbb", lw=0.8, ls=":")
    ax.set_title("latency distribution (CDF)")
    ax.legend(fontsize=8)
    ax = axes[1]
    stats = ["p50_ms", "p90_ms", "p99_ms", "max_ms"]
    w = 0.38
    for j, key in enumerate(("get_run", "post_task")):
        p = doc["phases"][key]
        vals = [p.get(s) or 0.0 for s in stats]
        xs = [i + (j - 0.5) * w for i in range(len(stats))]
        ax.bar(
            xs,
            vals,
            w,
            color=colors[key],
            label=f"{labels[key]}: {p['requests_per_second']:.0f} req/s, {p['errors']} errors",
        )
        for x, v in zip(xs, vals, strict=False):
            ax.annotate(f"{v:.0f}", (x, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(stats)))
    ax.set_xticklabels(["p50", "p90", "p99", "max"])
    ax.set_ylabel("latency, ms")
    ax.set_title("percentiles")
    ax.legend(fontsize=8)
    st = doc["settings"]
    mode = " (QUICK: validation only)" if st["quick"] else ""
    fig.suptitle(
        f"rewardsmith API on loopback, PostgreSQL {doc['services']['postgres']} + Redis {doc['services']['redis']}, "
        f"{st['clients']} concurrent clients; {doc['machine']['cpu_count']} CPUs shared by server and clients{mode}",
        fontsize=10,
    )
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--gets", type=int, default=2_000, help="GET /runs/{id} requests")
    ap.add_argument("--posts", type=int, default=500, help="POST /tasks requests")
    ap.add_argument("--warmup-seconds", type=float, default=3.0, help="unrecorded GETs and POSTs first")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each measured phase")
    ap.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to CREATE and DROP DATABASE",
    )
    ap.add_argument("--redis-host", default="127.0.0.1")
    ap.add_argument("--redis-port", type=int, default=6379)
    ap.add_argument("--redis-db", type=int, default=13, help="a spare, empty Redis database (flushed at the end)")
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true", help="10 clients, 200 requests of each, 1 s warm-up")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON and PNG")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.gets, args.posts, args.warmup_seconds = 10, 200, 200, 1.0

    doc: dict = {
        "benchmark": NAME,
        "issue": "p50/p99 latency of GET /runs/{id} and POST /tasks with 50 concurrent clients, loopback, PostgreSQL + Redis",
        "settings": {
            "clients": args.clients,
            "gets": args.gets,
            "posts": args.posts,
            "warmup_seconds": args.warmup_seconds,
            "max_seconds": args.max_seconds,
            "task_body": TASK_BODY,
            "quick": args.quick,
            "server": "rewardsmith serve --no-embedded-worker (one uvicorn process), no worker: tasks stay queued",
        },
        "machine": machine_info(),
    }
    print(
        f"{NAME}: {args.clients} clients, {args.gets:,} GETs, {args.posts:,} POSTs "
        f"(machine: {doc['machine']['cpu_count']} CPUs, {doc['machine']['cpu_model']}, load {doc['machine']['load_average_at_start']})"
    )

    redis_db = RedisDb(args.redis_host, args.redis_port, args.redis_db)
    redis_db.claim()
    pg = Postgres(args.pg_admin_url)
    tmp = Path(tempfile.mkdtemp(prefix="rewardsmith-api-bench-"))
    server = None
    try:
        db_url = pg.create()
        doc["services"] = {
            "postgres": pg.version,
            "redis": redis_db.version,
            "database": pg.name,
            "redis_db": args.redis_db,
        }
        print(
            f"services: PostgreSQL {pg.version} (database {pg.name}, created), Redis {redis_db.version} (db {args.redis_db})"
        )
        env = {
            **os.environ,
            "REWARDSMITH_DATABASE_URL": db_url,
            "REWARDSMITH_BROKER_URL": redis_db.url,
            "REWARDSMITH_DATA_DIR": str(tmp / "data"),
            "REWARDSMITH_TASK_RATE_PER_MINUTE": "1000000",
            "REWARDSMITH_MAX_TASK_TIMESTEPS": str(10**15),
            "REWARDSMITH_ENVIRONMENT": "local",
        }
        env.pop("REWARDSMITH_SECRET_KEY", None)
        made = subprocess.run(
            [rewardsmith_bin(), "users", "create", "bench", "--admin"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise RuntimeError(f"`rewardsmith users create` failed:\n{made.stdout}\n{made.stderr}")
        token = made.stdout.strip().splitlines()[-1].split()[-1]
        port = free_port()
        server = Server(env, port, tmp / "server.log")
        server.start()
        ready = server.wait_ready(args.ready_timeout)
        print(f"server: {server.base} ready after {ready:.1f} s (no worker runs: created tasks stay queued)")

        import httpx

        r = httpx.post(
            f"{server.base}/api/v1/tasks", json=TASK_BODY, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        r.raise_for_status()
        run_id = r.json()["run_id"]
        get_path = f"/api/v1/runs/{run_id}"

        async def drive() -> dict:
            phases = {}
            if args.warmup_seconds > 0:
                for method, path, body in (("GET", get_path, None), ("POST", "/api/v1/tasks", TASK_BODY)):
                    await phase(
                        server.base,
                        token,
                        method=method,
                        path=path,
                        body=body,
                        clients=args.clients,
                        requests=10**9,
                        max_seconds=args.warmup_seconds / 2,
                        record=False,
                    )
            phases["get_run"] = await phase(
                server.base,
                token,
                method="GET",
                path=get_path,
                body=None,
                clients=args.clients,
                requests=args.gets,
                max_seconds=args.max_seconds,
            )
            phases["post_task"] = await phase(
                server.base,
                token,
                method="POST",
                path="/api/v1/tasks",
                body=TASK_BODY,
                clients=args.clients,
                requests=args.posts,
                max_seconds=args.max_seconds,
            )
            return phases

        doc["phases"] = asyncio.run(drive())
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            run = c.get(get_path).json()
        doc["after"] = {"run_status_of_first_task": run.get("status"), "redis_keys": redis_db.keys()}
    finally:
        if server is not None:
            server.stop()
            doc.setdefault("server_log_tail", server.tail(15))
        try:
            pg.drop()
        finally:
            redis_db.flush()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        print(f"cleanup: server stopped, database {pg.name} dropped, redis db {args.redis_db} flushed")
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    print(
        f"\n{'endpoint':<24} {'reqs':>6} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for key, label in (("get_run", "GET /api/v1/runs/{id}"), ("post_task", "POST /api/v1/tasks")):
        p = doc["phases"][key]
        print(
            f"{label:<24} {p['requests']:>6} {p['errors']:>6} {p['requests_per_second']:>8.1f} {p['p50_ms'] or 0:>8.1f} "
            f"{p['p90_ms'] or 0:>8.1f} {p['p99_ms'] or 0:>8.1f} {p['max_ms'] or 0:>8.1f}"
            + ("  (stopped by the time limit)" if p["stopped_by_time_limit"] else "")
        )
        if p["errors"]:
            print(f"    status counts {p['status_counts']}; e.g. {p['error_samples'][:2]}")
    print(
        f"\n{args.clients} concurrent clients (one keep-alive connection each) on the same machine as the server; "
        f"no worker ran, so the {doc['phases']['post_task']['ok']} tasks created stay queued "
        f"(first run's status: {doc['after']['run_status_of_first_task']}; {doc['after']['redis_keys']} Redis keys before the flush)"
    )
    if args.quick:
        print("(--quick: 10 clients; run without --quick for the issue's 50)")
    write_outputs(args.out, NAME, doc, plot)


if __name__ == "__main__":
    main()
