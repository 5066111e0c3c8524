"""The search's thinking, with no database: the designers (LLM and offline) and who proposes a fitness, the critic,
the reflection on a training, the diagnostics of a training and of a run, human selection's scores, and what
makes two programs the same.

Above ``rules``; below ``records``. Nothing imports this ``__init__``; import the module you need.
"""
