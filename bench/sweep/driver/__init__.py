"""The parent's run loop: `bench run` (command.py), the runner that turns units into rows, progress lines, the run's verdict and exit status, and what a stop says (signals.py)."""
