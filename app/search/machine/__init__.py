"""The state machine's steps: start, design, train, the close of an iteration, the finish, the fitness proposal;
the entry points a dispatcher calls (``steps``), the in-process dispatcher (``local``) and the factories of a
run's designer and proposer.

The top layer: it may use every layer below; nothing below imports it. Nothing imports this ``__init__``; import
the module you need.
"""
