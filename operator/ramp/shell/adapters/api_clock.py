"""Seconds each thread spends in Kubernetes API requests (the adapter's own clock; the
controller's step timings read it, :mod:`ramp.shell.controller.timing`)."""

from __future__ import annotations

import threading
import time
from typing import Any


class ApiClock:
    """Seconds each thread has spent in API requests (wraps ``ApiClient.call_api``;
    with ``_preload_content=False`` the answer's body is read after it, not counted)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def seconds(self) -> float:
        return float(getattr(self._local, "seconds", 0.0))

    def wrap(self, api_client: Any) -> None:
        call = getattr(api_client, "call_api", None)
        if call is None:
            return

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            began = time.monotonic()
            try:
                return call(*args, **kwargs)
            finally:
                self._local.seconds = self.seconds() + time.monotonic() - began

        api_client.call_api = timed_call
