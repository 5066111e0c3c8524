"""The search as its callers see it: what the API, the dashboard and the CLI can do to tasks and runs.

A facade and nothing else: each name is defined in the layer it belongs to (see ``app.search``'s
docstring) and only re-exported here, so that callers need not know the layers and no step of
the search imports this module. Keyword-only functions; callers own the transaction.
"""

from __future__ import annotations

from app.search.decisions.approval import COMMAND_LINE, approve, decide, replace
from app.search.decisions.control import cancel_run, continue_run, new_run_from, resume_run
from app.search.decisions.feedback import add_feedback
from app.search.decisions.robots import add_robot, remove_robot, robot_or_404, share_robot
from app.search.decisions.sandbox_jobs import ProgramKind, check_for_person
from app.search.decisions.selection import choose
from app.search.decisions.tasks import create_task
from app.search.machine.local import LocalRun, local_database, run_local
from app.search.records.speed import training_rate
from app.search.rules.task import TaskSpec, task_budget

__all__ = [
    "COMMAND_LINE",
    "LocalRun",
    "ProgramKind",
    "TaskSpec",
    "add_feedback",
    "add_robot",
    "approve",
    "cancel_run",
    "check_for_person",
    "choose",
    "continue_run",
    "create_task",
    "decide",
    "local_database",
    "new_run_from",
    "remove_robot",
    "replace",
    "resume_run",
    "robot_or_404",
    "run_local",
    "share_robot",
    "task_budget",
    "training_rate",
]
