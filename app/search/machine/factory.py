"""Building the designer a run asked for, and the proposer of its fitness."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db.models import Run
from app.search.design.designers import Designer, LLMDesigner, OfflineDesigner
from app.search.design.proposers import FitnessProposer, LLMFitnessProposer, OfflineFitnessProposer
from app.search.machine.designing import DesignerFactory
from app.search.machine.proposing import ProposerFactory
from app.search.rules.options import options_of
from app.search.rules.states import DesignerKind


def designer_factory(sf: sessionmaker, settings: Settings) -> DesignerFactory:
    """A function that returns the run's designer: offline, or the LLM behind OPENAI_BASE_URL / REWARDSMITH_LLM_MODEL."""

    def make(run: Run) -> Designer:
        if run.task.designer == DesignerKind.OFFLINE:
            return OfflineDesigner()
        from app.llm.client import LLMClient, LLMConfig
        from app.llm.dbstore import DatabaseStore

        config = LLMConfig.from_settings(settings)
        return LLMDesigner(
            LLMClient(config, DatabaseStore(sf)), config.model, review=options_of(run.task).critic_review
        )

    return make


def proposer_factory(sf: sessionmaker, settings: Settings) -> ProposerFactory:
    """A function that returns who proposes the run's fitness: the run's designer, offline or the LLM."""

    def make(run: Run) -> FitnessProposer:
        if run.task.designer == DesignerKind.OFFLINE:
            return OfflineFitnessProposer()
        from app.llm.client import LLMClient, LLMConfig
        from app.llm.dbstore import DatabaseStore

        config = LLMConfig.from_settings(settings)
        return LLMFitnessProposer(LLMClient(config, DatabaseStore(sf)), config.model)

    return make
