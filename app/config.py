"""One settings object for the whole process, read from REWARDSMITH_* variables (and OPENAI_* for the LLM)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Defaults run on one machine with nothing installed: SQLite, an embedded broker, the offline designer."""

    model_config = SettingsConfigDict(env_prefix="REWARDSMITH_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    """Databases, broker files and artifacts live here unless URLs say otherwise."""
    database_url: str | None = None
    """SQLAlchemy URL; default sqlite:///<data_dir>/rewardsmith.sqlite3."""
    broker_url: str | None = None
    """Celery broker; default an SQLite broker under data_dir (kombu's SQLAlchemy transport)."""
    environment: str = "local"
    """'local' or 'production'; production refuses unsafe defaults."""

    # LLM (OpenAI-compatible)
    openai_base_url: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "REWARDSMITH_OPENAI_BASE_URL"))
    openai_api_key: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "REWARDSMITH_OPENAI_API_KEY"))
    llm_model: str | None = None
    """Model name; with no model and no API key the offline designer is used."""
    llm_temperature: float = 1.0
    llm_timeout_seconds: float = 120.0
    llm_max_retries: int = 4
    llm_price_per_1k_input: float | None = None
    llm_price_per_1k_output: float | None = None

    # Sandbox
    sandbox_memory_mb: int = 8192
    sandbox_wall_seconds: float = 3600.0
    """Hard limit on one training; keep it below the broker's visibility timeout."""
    sandbox_max_file_mb: int = 512

    # Budgets
    max_timesteps_per_training: int = 5_000_000
    max_task_timesteps: int = 200_000_000
    """Cap on iterations x samples x timesteps of one task."""

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
    def llm_configured(self) -> bool:
        return bool(self.llm_model and (self.openai_api_key or self.openai_base_url))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings()
