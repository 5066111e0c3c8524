"""The search: from a task to a tested reward, as layers whose imports point one way, down.

- ``rules``: what a task is (its declaration, bounds, states, fitness, budget); no I/O.
- ``design``: designers, critic, reflection, diagnostics, human selection's scores; pure.
- ``records``: the rows every step shares, and how they are read (``run.json``).
- ``decisions``: what a person decides (a task, feedback, approval, choices), and every sandbox job a person can
  start, through one capped gateway.
- ``machine``: the state machine's steps, as a dispatcher (Celery, or the in-process one) runs them.

``service`` is the facade the API, the dashboard and the CLI call. A layer imports only the layers below it;
``tests/test_layout.py`` checks that. Nothing imports this ``__init__`` or a layer's.
"""
