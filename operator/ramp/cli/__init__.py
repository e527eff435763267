"""``kubectl-ramp``, the kubectl plugin: ``kubectl ramp get|promote|abort|retry|pause|resume|
set image|undo|status|plan``. See :mod:`ramp.cli.main`."""

from ramp.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
