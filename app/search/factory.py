"""Building the designer a run asked for."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db.models import Run
from app.search.design import DesignerFactory
from app.search.designers import Designer, LLMDesigner, OfflineDesigner


def designer_factory(sf: sessionmaker, settings: Settings) -> DesignerFactory:
    """A function that returns the run's designer: offline, or the LLM behind OPENAI_BASE_URL / REWARDSMITH_LLM_MODEL."""

    def make(run: Run) -> Designer:
        if run.task.designer == "offline":
            return OfflineDesigner()
        from app.llm.client import LLMClient, LLMConfig
        from app.llm.dbstore import DatabaseStore

        config = LLMConfig(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.llm_model or "",
            temperature=settings.llm_temperature,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            backoff_seconds=settings.llm_backoff_seconds,
            price_per_1k_input=settings.llm_price_per_1k_input,
            price_per_1k_output=settings.llm_price_per_1k_output,
        )
        return LLMDesigner(
            LLMClient(config, DatabaseStore(sf)), config.model, review=bool(run.task.options.get("critic_review"))
        )

    return make
