"""Shared pytest configuration: fixtures of the real components, registered as plugins."""

from __future__ import annotations

import sys
from pathlib import Path

# The fixture packages (tests/cluster, tests/prometheus, ...) import as top-level packages.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

pytest_plugins = [
    "cluster.fixtures",
    "prometheus.fixtures",
]
