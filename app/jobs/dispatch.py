"""The dispatcher the service uses: each step becomes a Celery message on its queue."""

from __future__ import annotations

from app.jobs.celery_app import TASK_DESIGN, TASK_PROPOSE, TASK_RESUME, TASK_START, TASK_TRAIN, celery_app


class CeleryDispatcher:
    """Sends steps to the broker; call only after the commit that created the rows they read."""

    def start(self, run_id: int) -> None:
        celery_app.send_task(TASK_START, args=[run_id])

    def resume(self, run_id: int) -> None:
        celery_app.send_task(TASK_RESUME, args=[run_id])

    def design(self, run_id: int) -> None:
        celery_app.send_task(TASK_DESIGN, args=[run_id])

    def propose_fitness(self, run_id: int) -> None:
        celery_app.send_task(TASK_PROPOSE, args=[run_id])

    def train(self, training_id: int) -> None:
        celery_app.send_task(TASK_TRAIN, args=[training_id])
