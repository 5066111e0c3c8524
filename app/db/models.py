"""SQLAlchemy models: users and tokens, tasks, runs, iterations, candidates, trainings, feedback, LLM audit,
proposed fitness programs, the choices of human selection, and users' robots with their files."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.search.rules.states import (
    CandidateStatus,
    IterationStatus,
    Origin,
    ProposalStatus,
    Purpose,
    RunPhase,
    RunStatus,
    Selection,
    TrainingStatus,
)
from workers.engine.result import TrainingResult


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones: store naive UTC, read back aware)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; use app.db.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Named(TypeDecorator):
    """A ``StrEnum`` stored as its value in a VARCHAR column, read back as the member (no schema change)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {dict: JSON, list: JSON}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiToken(TimestampMixin, Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(back_populates="tokens")


class DashboardSession(TimestampMixin, Base):
    """A browser signed in to the dashboard: its cookie holds a random id, this table only the id's SHA-256.

    It belongs to the API token that signed it in: revoking or deleting that token ends the session too."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """The absolute end of the session, however active it is."""

    user: Mapped[User] = relationship()
    token: Mapped[ApiToken] = relationship()


class Task(TimestampMixin, Base):
    """What a user submitted: env, behaviour, fitness and search settings."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    env: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    fitness_name: Mapped[str] = mapped_column(String(64))
    fitness_source: Mapped[str | None] = mapped_column(Text)
    designer: Mapped[str] = mapped_column(String(16))
    iterations: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer)
    timesteps: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    wait_for_feedback: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    selection: Mapped[Selection] = mapped_column(
        Named(Selection, 16), default=Selection.FITNESS, server_default=Selection.FITNESS.value
    )
    """How the next parent is picked: the best fitness, or a person's choices between videos."""

    runs: Mapped[list[Run]] = relationship(back_populates="task", order_by="Run.id")


class Run(TimestampMixin, Base):
    """One execution of the search for a task; its status follows ``app.search.rules.states``."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    status: Mapped[RunStatus] = mapped_column(Named(RunStatus, 24), default=RunStatus.QUEUED, index=True)
    phase: Mapped[RunPhase] = mapped_column(Named(RunPhase, 16), default=RunPhase.SEARCH)
    """search → final (re-evaluating the best) → done; guards the completion hook."""
    best_candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", use_alter=True, ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict] = mapped_column(JSON, default=dict)
    final: Mapped[dict] = mapped_column(JSON, default=dict)
    """Final re-evaluation of the best candidate and the normalized score."""
    diagnostics: Mapped[dict] = mapped_column(JSON, default=dict)
    """Run diagnostics (``app.search.design.diagnostics``): ``{"items": [{code, message, numbers, advice}]}``."""
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    task: Mapped[Task] = relationship(back_populates="runs")
    iterations: Mapped[list[Iteration]] = relationship(back_populates="run", order_by="Iteration.index")
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="run", order_by="Candidate.id", foreign_keys="Candidate.run_id"
    )


class Iteration(TimestampMixin, Base):
    """One round: design K candidates, check, train, reflect."""

    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_iteration_run_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    status: Mapped[IterationStatus] = mapped_column(Named(IterationStatus, 24), default=IterationStatus.DESIGNING)
    """designing → screening (successive halving) → training → done."""
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", use_alter=True, ondelete="SET NULL"))
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    """What the designer was given: parent, reflection, feedback, errors (for audit and the dashboard)."""
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[Run] = relationship(back_populates="iterations")
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="iteration", order_by="Candidate.index", foreign_keys="Candidate.iteration_id"
    )


class Candidate(TimestampMixin, Base):
    """One reward program with its verdicts, trainings, fitness and reflection."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration_id: Mapped[int | None] = mapped_column(ForeignKey("iterations.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", ondelete="SET NULL"))
    origin: Mapped[Origin] = mapped_column(Named(Origin, 32))
    code: Mapped[str | None] = mapped_column(Text)
    code_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[CandidateStatus] = mapped_column(
        Named(CandidateStatus, 24), default=CandidateStatus.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    critic: Mapped[list] = mapped_column(JSON, default=list)
    """Critic notes: [{stage, verdict, text}]; repairs appear as notes too."""
    dry_run: Mapped[dict] = mapped_column(JSON, default=dict)
    answer: Mapped[str | None] = mapped_column(Text)
    """The designer's whole answer (prose and code) for audit."""
    design: Mapped[dict] = mapped_column(JSON, default=dict)
    """What the designer knows about this program (the offline designer's genome, the LLM's model)."""
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id", ondelete="SET NULL"))
    fitness: Mapped[float | None] = mapped_column(Float)
    fitness_std: Mapped[float | None] = mapped_column(Float)
    reflection: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[dict] = mapped_column(JSON, default=dict)
    screen: Mapped[dict | None] = mapped_column(JSON)
    """The trajectory screen's verdict on its reward before it trained (``workers.engine.screen``); None when it
    was not screened."""
    steps_own: Mapped[int | None] = mapped_column(Integer)
    """PPO steps its own policy trained (its trainings of the search, not the final re-trainings)."""
    steps_ancestors: Mapped[int | None] = mapped_column(Integer)
    """PPO steps its ancestors' policies had trained before its own started from them (0: from scratch)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    run: Mapped[Run] = relationship(back_populates="candidates", foreign_keys=[run_id])
    iteration: Mapped[Iteration | None] = relationship(back_populates="candidates", foreign_keys=[iteration_id])
    trainings: Mapped[list[Training]] = relationship(back_populates="candidate", order_by="Training.id")
    feedback: Mapped[list[Feedback]] = relationship(back_populates="candidate", order_by="Feedback.id")


class Training(TimestampMixin, Base):
    """One sandboxed PPO training of a candidate (screening, full budget, final re-evaluation seed)."""

    __tablename__ = "trainings"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[Purpose] = mapped_column(Named(Purpose, 16))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    timesteps: Mapped[int] = mapped_column(Integer)
    resume_from_id: Mapped[int | None] = mapped_column(ForeignKey("trainings.id", ondelete="SET NULL"))
    warm_start_from_id: Mapped[int | None] = mapped_column(ForeignKey("trainings.id", ondelete="SET NULL"))
    """The parent candidate's training whose policy this one starts from (another reward; None: from scratch)."""
    continue_from_parent: Mapped[bool | None] = mapped_column(Boolean)
    """The task's ``continue_from_parent`` option when this training was made (None: made before it existed)."""
    status: Mapped[TrainingStatus] = mapped_column(Named(TrainingStatus, 24), default=TrainingStatus.QUEUED, index=True)
    """queued → running → ok | rejected | failed | timeout | resource_limit | cancelled."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[TrainingResult] = mapped_column(JSON, default=dict)
    artifacts_key: Mapped[str | None] = mapped_column(Text)
    """Where the recorded attempt's files are in the artifact store (``app.artifacts.keys``), never a host path."""
    stored_files: Mapped[dict[str, int] | None] = mapped_column(JSON)
    """The files stored under ``artifacts_key`` by relative name, with their sizes, as uploaded (None for trainings
    recorded before migration 0008: their files are listed from the store)."""
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Refreshed while the training runs; a stale one means its worker died and another may take it over."""
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    candidate: Mapped[Candidate] = relationship(back_populates="trainings")


class Feedback(TimestampMixin, Base):
    """A person's text and rating on a candidate; it enters the next iteration's prompt."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    used_in_iteration: Mapped[int | None] = mapped_column(Integer)

    candidate: Mapped[Candidate] = relationship(back_populates="feedback")


class LLMExchange(TimestampMixin, Base):
    """Every request to the LLM and what came back, for audit and the token ledger."""

    __tablename__ = "llm_exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict] = mapped_column(JSON, default=dict)
    response: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)


class LLMCacheEntry(TimestampMixin, Base):
    """An LLM answer keyed by the exact request, so a re-run replays it without spending tokens."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


class FitnessProposal(TimestampMixin, Base):
    """A fitness program proposed from a task's sentence (or a person's edit of one), its checks and the decision."""

    __tablename__ = "fitness_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    origin: Mapped[Origin] = mapped_column(Named(Origin, 32))
    """llm, repair (the LLM's second try after its first failed the checks), offline, or person (an edit)."""
    author: Mapped[str] = mapped_column(String(128))
    """Who wrote it, in words: the designer's label, or the person's name."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """The person who wrote it (an edit); None for a designer's proposal or the command line."""
    status: Mapped[ProposalStatus] = mapped_column(Named(ProposalStatus, 16), default=ProposalStatus.PROPOSED)
    name: Mapped[str] = mapped_column(String(64))
    meaning: Mapped[str] = mapped_column(Text, default="")
    """What it measures, in words."""
    source: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    """The LLM's whole answer, for audit."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why the checks refused it (broken)."""
    dry_run: Mapped[dict] = mapped_column(JSON, default=dict)
    measurement: Mapped[dict] = mapped_column(JSON, default=dict)
    """Its values on random-policy episodes (``workers.engine.measure``)."""
    note: Mapped[str | None] = mapped_column(Text)
    """A person's reason for asking for another proposal; the next proposal's prompt carries it."""
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    """Who approved, replaced or rejected it, in words (a name, or 'command line')."""
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SelectionChoice(TimestampMixin, Base):
    """A person's choice in one group of candidates (human selection), with the scores it led to."""

    __tablename__ = "selection_choices"
    __table_args__ = (UniqueConstraint("run_id", "iteration", "round", "position", name="uq_selection_choice_group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    """The index of the iteration whose candidates were compared."""
    round: Mapped[int] = mapped_column(Integer)
    """Knock-out round within the iteration: round 0 groups every entrant, later rounds the winners."""
    position: Mapped[int] = mapped_column(Integer)
    """The group's place within its round."""
    group: Mapped[list] = mapped_column(JSON, default=list)
    """The candidate ids shown, in the order shown."""
    best_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    ranking: Mapped[list] = mapped_column(JSON, default=list)
    """Every candidate of the group, best first (only the best known: the best, then the rest as shown)."""
    ranked: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether the person ranked the whole group (else only the best was chosen)."""
    none_right: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    """The person said none of the group is right (with a sentence): no one beat anyone, the fitness picks the one
    that goes on, and the sentence is feedback for the next prompt."""
    text: Mapped[str | None] = mapped_column(Text)
    feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="SET NULL"))
    """The sentence, kept as feedback on the chosen candidate: the next prompt carries it."""
    scores: Mapped[dict] = mapped_column(JSON, default=dict)
    """Bradley–Terry scores of the run's candidates after this choice ({candidate id: score})."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    chosen_by: Mapped[str] = mapped_column(String(128))
    """Who chose, in words."""


class Robot(TimestampMixin, Base):
    """A user's robot: an uploaded MJCF that a sandboxed compile accepted, stored with its files so that a worker on
    any host can register it (``app.search.records.robots``). Its name is an env name, unique across all users."""

    __tablename__ = "robots"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(48), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    """None: added from the command line (the operator's); only admins see it unless it is shared."""
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    """Shared with every user by an admin (they may use it; only its owner or an admin may remove it)."""
    root_file: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    """Its settings with every default resolved (``RobotSettings.to_dict``)."""
    description: Mapped[dict] = mapped_column(JSON, default=dict)
    """What the sandboxed compile found (``RobotDescription.to_json``)."""
    content_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of its files, root file, settings and description: a process keeps what it registered under this."""
    picture: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """Its initial pose rendered by a sandboxed job (PNG, checked before it was stored); None when rendering failed."""
    picture_error: Mapped[str | None] = mapped_column(Text)

    files: Mapped[list[RobotFile]] = relationship(
        back_populates="robot", cascade="all, delete-orphan", order_by="RobotFile.path"
    )


class RobotFile(Base):
    """One uploaded file of a robot (its MJCF, a mesh, a texture), as bytes: at most ``envs.upload.MAX_FILE_BYTES``."""

    __tablename__ = "robot_files"
    __table_args__ = (UniqueConstraint("robot_id", "path", name="uq_robot_file_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    robot_id: Mapped[int] = mapped_column(ForeignKey("robots.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(200))
    """Relative path inside the upload, as the MJCF names it."""
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    robot: Mapped[Robot] = relationship(back_populates="files")


class Webhook(TimestampMixin, Base):
    """Where a user is told that a run of theirs ended or waits for a person (one per user), and the secret the
    requests are signed with (``app.webhooks``); the secret is shown to the user once and kept to sign."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list] = mapped_column(JSON, default=list)
    """Which of ``app.search.records.webhooks.EVENTS`` are sent."""


class WebhookDelivery(TimestampMixin, Base):
    """One event to send to a webhook, written in the transaction of the status move it tells of (an outbox), and
    sent afterwards, retried with backoff, by ``app.webhooks.deliver_due``: the search never waits on it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    """The JSON sent, exactly as signed."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    """pending, delivered or failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    webhook: Mapped[Webhook] = relationship()
