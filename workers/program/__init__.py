"""The reward contract: the static check of a program (policy), the numpy facade and builtins it runs with,
freezing its module state, and loading it as a callable (program). No process handling: that is sandbox/."""
