"""What a person decides, and the bounds on it: creating a task (under the rate limit), cancelling and resuming a
run, feedback, approving or editing a proposed fitness, choosing between candidates, and every sandbox job a
person can start (each through one capped gateway, ``sandbox_jobs``).

Above ``records``; below ``machine``, which may call in here (a step that waits for a person's choice). Nothing
imports this ``__init__``; import the module you need.
"""
