"""The rows every step of the search shares, and how they are read: a run's status moves and usage ledger, new
trainings and their dispatch after the commit, which training describes a candidate, fitness proposals and a
person's choices as records, ``run.json``, and the measured training speed.

Above ``rules`` and ``design``; below ``decisions`` and ``machine``, which both write through it. Nothing imports
this ``__init__``; import the module you need.
"""
