"""One settings object for the whole process, read from REWARDSMITH_* variables (and OPENAI_* for the LLM)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.artifacts.keys import parse_url
from workers.sandbox.runner import Limits


class Settings(BaseSettings):
    """Defaults run on one machine with nothing installed: SQLite, an embedded broker, the offline designer."""

    model_config = SettingsConfigDict(env_prefix="REWARDSMITH_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    """Databases, broker files and artifacts live here unless URLs say otherwise."""
    database_url: str | None = None
    """SQLAlchemy URL; default sqlite:///<data_dir>/rewardsmith.sqlite3."""
    broker_url: str | None = None
    """Celery broker; default an SQLite broker under data_dir (kombu's SQLAlchemy transport)."""
    artifacts_url: str | None = None
    """Where trainings' files go: ``s3://bucket/prefix`` (any S3-compatible store; boto3 reads the credentials and
    region: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or a role); default <data_dir>/artifacts."""
    artifacts_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REWARDSMITH_ARTIFACTS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    )
    """The S3 endpoint for anything but AWS itself (MinIO: http://minio:9000)."""
    artifacts_retries: int = 5
    """Times a training whose artifact store was unreachable is retried (backing off) before its run fails."""
    artifacts_retry_seconds: float = 15.0
    """Wait before the first such retry; it doubles with each."""
    environment: str = "local"
    """'local' or 'production'; production refuses unsafe defaults."""
    secret_key: str | None = None
    """Signs dashboard session cookies; default: a key generated once and kept in data_dir."""
    max_body_bytes: int = 1_000_000

    # HTTP limits (unauthenticated clients must not exhaust memory or connections; ``app.cli.http``)
    http_max_header_bytes: int = 64 * 1024
    """A request's line and headers together; a larger head gets a 400 and the connection is closed."""
    http_head_seconds: float = 10.0
    """A connection must send a whole request head within this long of connecting (or of its previous answer, plus
    the keep-alive time); `serve` closes it otherwise."""
    http_stall_seconds: float = 10.0
    """A request body that sends nothing for this long gets a 408."""
    http_body_seconds: float = 60.0
    """A request body still arriving this long after the request began gets a 408."""
    http_keep_alive_seconds: float = 5.0
    """An idle connection is closed this long after its last answer."""
    http_max_connections: int = 512
    """Connections `serve` holds at once (each API process); more are answered 503 and closed at once."""
    task_rate_per_minute: int = 10
    """Tasks one user may create per minute."""

    # Dashboard sessions (the cookie holds a random id; the database its hash)
    session_idle_seconds: float = 2 * 3600.0
    """A dashboard session unused for this long ends (the live pages' polling counts as use)."""
    session_max_seconds: float = 24 * 3600.0
    """A dashboard session ends this long after signing in, however active it is."""

    # Interactive program checks (the dashboard's "check my fitness program"): short, and few at a time
    check_wall_seconds: float = 10.0
    """Wall-clock limit of one interactive check in the sandbox (a training's limit is sandbox_wall_seconds)."""
    check_slots_per_user: int = 2
    """Interactive checks one user may have running at once; more are refused with 429."""
    check_slots_total: int = 4
    """Interactive checks running at once on this machine, all users together."""
    fitness_proposals_per_run: int = 6
    """Fitness proposals one run may have made (the first included; an LLM's repair counts with its proposal);
    after that a person approves one or sends their own program (409 on asking for more)."""
    fitness_reproposals_per_hour: int = 20
    """Requests for another fitness proposal one user may make per hour, all runs together (429 beyond)."""

    shutdown_grace_seconds: float = 10.0
    """`rewardsmith serve` gives its workers this long to stop after SIGTERM, then kills what is left (a training
    cut short is redelivered: tasks are acknowledged late)."""

    # LLM (OpenAI-compatible)
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "REWARDSMITH_OPENAI_BASE_URL")
    )
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "REWARDSMITH_OPENAI_API_KEY")
    )
    llm_model: str | None = None
    """Model name; with no model and no API key the offline designer is used."""
    llm_temperature: float = 1.0
    llm_timeout_seconds: float = 120.0
    llm_max_retries: int = 4
    llm_backoff_seconds: float = 1.0
    """First retry delay after a 429/5xx/timeout; doubles per retry."""
    llm_price_per_1k_input: float | None = None
    llm_price_per_1k_output: float | None = None

    # Sandbox
    sandbox_memory_mb: int = 8192
    sandbox_wall_seconds: float = 3600.0
    """Hard limit on one training; keep it below the broker's visibility timeout."""
    sandbox_max_file_mb: int = 512
    sandbox_progress_seconds: float = 120.0
    """A training that reports no progress for this long (a reward program that hangs) is killed as a timeout."""
    sandbox_reward_cost_ratio: float = 10.0
    """A reward call may cost at most this multiple of simulating the same batch; slower programs are rejected."""

    train_threads: int = 1
    """C threads one training steps its batch of envs on; a train worker runs cores / threads trainings at once."""
    train_steps_per_second: float = 2500.0
    """Steps per second one training reaches on one worker slot, for time estimates until trainings here have
    measured one (``app.search.records.speed``)."""

    broker_visibility_timeout: float = 7200.0
    """Seconds before an unacknowledged message is redelivered (Redis/SQL brokers); must exceed any task's run time."""
    sweep_seconds: float = 60.0
    """How often the service looks for runs that wait on lost work (orphaned trainings) and kicks them."""
    training_lease_seconds: float = 90.0
    """A running training whose heartbeat is older than this is taken to be orphaned (its worker died)."""
    training_heartbeat_seconds: float = 10.0
    """How often a running training refreshes its heartbeat; the lease must be at least twice this."""
    training_max_attempts: int = 3
    worker_stall_seconds: float = 180.0
    """A worker whose queues held waiting work for this long while it had a free slot has stalled (Celery's consumer
    sometimes stops after a broker restart): it stops so that its supervisor starts a fresh one (``app.jobs.watchdog``).
    0 turns the check off."""

    # Webhooks (``app.webhooks``)
    webhook_allow_private: bool = False
    """Allow webhooks to loopback, private, link-local and other internal addresses. Off: a user's URL must not
    reach into the service's own network (SSRF). Turn on only where every user may reach that network anyway."""
    webhook_timeout_seconds: float = 5.0
    """The longest one delivery attempt waits for the receiver."""
    webhook_max_attempts: int = 6
    """Attempts per delivery before it is marked failed."""
    webhook_backoff_seconds: float = 10.0
    """Wait before the second attempt; doubled after each failed one."""

    # Budgets
    max_timesteps_per_training: int = 5_000_000
    max_task_timesteps: int = 200_000_000
    """Cap on iterations x samples x timesteps of one task."""

    def sandbox_limits(self, *, wall_seconds: float | None = None) -> Limits:
        """The limits every sandboxed job runs under; ``wall_seconds`` shortens the wall clock (dry runs, checks)."""
        return Limits(
            wall_seconds=min(wall_seconds or self.sandbox_wall_seconds, self.sandbox_wall_seconds),
            memory_mb=self.sandbox_memory_mb,
            max_file_mb=self.sandbox_max_file_mb,
            progress_seconds=self.sandbox_progress_seconds,
            reward_cost_ratio=self.sandbox_reward_cost_ratio,
            threads=self.train_threads,
        )

    @property
    def train_slots(self) -> int:
        """Trainings one machine runs at once: the cores this process may use over the threads of one training."""
        return max(1, usable_cores() // max(1, self.train_threads))

    @property
    def task_time_limit(self) -> float:
        """Celery's hard limit for one training task: the sandbox limit plus a margin for loading and recording."""
        return self.sandbox_wall_seconds + 120.0

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if self.task_time_limit >= self.broker_visibility_timeout:
            raise ValueError(
                f"REWARDSMITH_SANDBOX_WALL_SECONDS ({self.sandbox_wall_seconds:g}) + 120 s must stay below "
                f"REWARDSMITH_BROKER_VISIBILITY_TIMEOUT ({self.broker_visibility_timeout:g}), or the broker would hand a "
                "running training to a second worker"
            )
        if self.training_lease_seconds < 2 * self.training_heartbeat_seconds:
            raise ValueError(
                f"REWARDSMITH_TRAINING_LEASE_SECONDS ({self.training_lease_seconds:g}) must be at least twice "
                f"REWARDSMITH_TRAINING_HEARTBEAT_SECONDS ({self.training_heartbeat_seconds:g}), or a live training whose "
                "next heartbeat is a little late would be taken for orphaned and trained a second time"
            )
        if self.worker_stall_seconds and self.worker_stall_seconds < 10:
            raise ValueError(
                f"REWARDSMITH_WORKER_STALL_SECONDS ({self.worker_stall_seconds:g}) must be 0 (off) or at least 10: a "
                "worker takes a moment to fetch the next message, and a restart costs more than a short wait"
            )
        if self.sandbox_progress_seconds < 30:
            raise ValueError(
                f"REWARDSMITH_SANDBOX_PROGRESS_SECONDS ({self.sandbox_progress_seconds:g}) must be at least 30: a "
                "training reports every few seconds, but loading and the dry run come before its first report"
            )
        if self.sandbox_reward_cost_ratio < 1:
            raise ValueError(
                f"REWARDSMITH_SANDBOX_REWARD_COST_RATIO ({self.sandbox_reward_cost_ratio:g}) must be at least 1: "
                "even a one-line reward costs about as much as one simulation step"
            )
        if not 1 <= self.train_threads <= 256:
            raise ValueError(
                f"REWARDSMITH_TRAIN_THREADS ({self.train_threads}) must be between 1 and 256: the C threads one "
                "training steps its envs on (1 or 2 is right for most machines; more pays with many envs per training)"
            )
        if not 0 < self.session_idle_seconds <= self.session_max_seconds:
            raise ValueError(
                f"REWARDSMITH_SESSION_IDLE_SECONDS ({self.session_idle_seconds:g}) must be positive and at most "
                f"REWARDSMITH_SESSION_MAX_SECONDS ({self.session_max_seconds:g})"
            )
        if not 1 <= self.check_slots_per_user <= self.check_slots_total:
            raise ValueError(
                f"REWARDSMITH_CHECK_SLOTS_PER_USER ({self.check_slots_per_user}) must be at least 1 and at most "
                f"REWARDSMITH_CHECK_SLOTS_TOTAL ({self.check_slots_total})"
            )
        if min(self.http_head_seconds, self.http_stall_seconds, self.http_keep_alive_seconds) <= 0 or not (
            self.http_stall_seconds <= self.http_body_seconds
        ):
            raise ValueError(
                "REWARDSMITH_HTTP_HEAD_SECONDS, _STALL_SECONDS and _KEEP_ALIVE_SECONDS must be positive, and "
                f"REWARDSMITH_HTTP_STALL_SECONDS ({self.http_stall_seconds:g}) at most REWARDSMITH_HTTP_BODY_SECONDS "
                f"({self.http_body_seconds:g})"
            )
        if self.http_max_header_bytes < 4096 or self.http_max_connections < 1:
            raise ValueError(
                f"REWARDSMITH_HTTP_MAX_HEADER_BYTES ({self.http_max_header_bytes}) must be at least 4096 (browsers "
                f"send a few KB) and REWARDSMITH_HTTP_MAX_CONNECTIONS ({self.http_max_connections}) at least 1"
            )
        if self.fitness_proposals_per_run < 1 or self.fitness_reproposals_per_hour < 0:
            raise ValueError(
                f"REWARDSMITH_FITNESS_PROPOSALS_PER_RUN ({self.fitness_proposals_per_run}) must be at least 1 and "
                f"REWARDSMITH_FITNESS_REPROPOSALS_PER_HOUR ({self.fitness_reproposals_per_hour}) at least 0"
            )
        if self.artifacts_url is not None:
            parse_url(self.artifacts_url)
        if self.environment == "production":
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("production needs REWARDSMITH_DATABASE_URL pointing at PostgreSQL, not SQLite")
            if self.broker_url is None or self.broker_url.startswith("sqla+"):
                raise ValueError("production needs REWARDSMITH_BROKER_URL pointing at Redis or RabbitMQ")
            if not self.secret_key or len(self.secret_key) < 32:
                raise ValueError("production needs REWARDSMITH_SECRET_KEY (32 characters or more)")
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'rewardsmith.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_model and (self.openai_api_key or self.openai_base_url))


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPU cores this process may use: those it may run on, capped by its cgroup's CPU quota (a container's
    ``cpus:``), so that a worker in a container sized to 4 cores runs 4 trainings, not one per core of the host."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):  # no cgroup v2 here, or a format this does not know: the cores are the limit
        pass
    return max(1, cores)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings()
