"""What a task is, with no I/O: the names of the search's states and the legal moves between them, a task's
declaration (``TaskSpec``) and options with every bound, its fitness, and what it will cost.

The bottom layer of the search: it imports nothing from the layers above (design, records, decisions, machine).
Nothing imports this ``__init__``; import the module you need.
"""
