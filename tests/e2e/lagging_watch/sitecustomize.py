"""A namespace watch that lags, for the operator subprocess of test_namespace_startup.

On this directory's path (PYTHONPATH), Python imports it at start: kopf's namespace watch
begins ``RAMP_TEST_NAMESPACE_WATCH_LAG`` seconds late, after kopf's own first listing of
the namespaces. What is created in between is what a slow API server or a loaded machine
leaves in the gap; kopf ignores it (its watch drops its own initial list)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

LAG = float(os.environ.get("RAMP_TEST_NAMESPACE_WATCH_LAG") or 0)

if LAG > 0:
    from kopf._core.reactor import queueing

    _watcher = queueing.watcher

    async def watcher(*, resource: Any, **kwargs: Any) -> None:
        if getattr(resource, "plural", None) == "namespaces":
            await asyncio.sleep(LAG)
        await _watcher(resource=resource, **kwargs)

    queueing.watcher = watcher  # type: ignore[assignment]
