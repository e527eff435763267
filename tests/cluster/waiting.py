"""The one poll of the tests that need a cluster, Prometheus or the e2e helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    what: str,
    probe: Callable[[], T],
    timeout: float = 60,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
    retry: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``probe`` until it returns something truthy (returned); fail after ``timeout``
    seconds naming ``what``, with ``describe()`` (or else the last value). An exception of a
    type in ``retry`` counts as "not yet" (the state may not exist yet). Every wait is
    bounded."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except retry as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else f"; last: {last!r}"
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{extra}")
        time.sleep(interval)
