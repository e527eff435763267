"""The model tests draw the same examples whatever ran before them in the process.

Hypothesis (since 6.131) sometimes draws, instead of a random integer, float or string, a
constant found in the source of the *local* modules loaded in the process (everything of
``operator/ramp`` that is imported, test files excepted), a pool that grows as modules are
imported. ``pytest tests/unit tests/model`` loads modules the model tests never import (the
CLI, the dashboard, the notifiers...), so the derandomized machines drew other examples
after ``tests/unit`` than alone: one of them failed only in the landing run (test order),
and a constant added anywhere in the operator changed every machine's examples. Here the
pool is empty (Hypothesis' built-in constants stay): the examples depend on the
strategies and the seed only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:  # a private seam of Hypothesis: without it (older or newer), nothing to pin
    from hypothesis.internal.conjecture import providers as _providers
    from hypothesis.internal.constants_ast import Constants as _Constants
except ImportError:  # pragma: no cover
    _providers = None  # type: ignore[assignment]


def _pin(providers: object) -> bool:
    return hasattr(providers, "_get_local_constants") and hasattr(providers, "CONSTANTS_CACHE")


@pytest.fixture(autouse=True)
def _no_local_constants(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if _providers is None or not _pin(_providers):
        yield
        return
    empty = _Constants()
    _providers.CONSTANTS_CACHE.cache.clear()  # computed from the pool as it was
    monkeypatch.setattr(_providers, "_get_local_constants", lambda: empty)
    yield
    _providers.CONSTANTS_CACHE.cache.clear()  # the next tests recompute from the real pool
