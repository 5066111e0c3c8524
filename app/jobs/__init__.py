"""Celery wiring: the app with its named queues, the thin tasks (each calls one search step), the dispatcher.

This is the only place that knows about the broker; the search (``app.search``) schedules
its steps through the ``Dispatcher`` protocol, and workers/ (what a worker runs) knows
nothing of either.
"""
