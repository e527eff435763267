"""A small exporter whose request and error rates the test sets at run time.

Serves ``http_requests_total{namespace, rollout, revision, code}`` on 127.0.0.1 (a free
port). A background thread adds ``rps * dt`` requests about ten times a second to every
configured (namespace, rollout, revision), ``error_ratio`` of them with ``code="500"``
and the rest with ``code="200"``. Counters grow by fractional amounts, so
``rate(...5xx) / rate(...)`` equals ``error_ratio`` exactly, with no sampling noise.

Both code series are created as soon as a revision is configured (at zero), like an
application that initialises its counters: a zero error rate is then ``0``, not "no data".
A revision whose rps is 0 keeps its series but they stop growing: its ratio is NaN (0/0),
which is what "no traffic" looks like in Prometheus.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, start_http_server

TICK_SECONDS = 0.1


@dataclass
class _Rate:
    rps: float
    error_ratio: float


class Exporter:
    """Serves the counters; ``set_rate`` changes a revision's traffic at once."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "http_requests",
            "HTTP requests served, by revision and status code (synthetic test traffic).",
            ["namespace", "rollout", "revision", "code"],
            registry=self.registry,
        )
        self._rates: dict[tuple[str, str, str], _Rate] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server, self._server_thread = start_http_server(
            port, addr=host, registry=self.registry
        )
        self.host = host
        self.port: int = self._server.server_port
        self._ticker = threading.Thread(target=self._run, name="exporter-ticker", daemon=True)
        self._ticker.start()

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus scrape config."""
        return f"{self.host}:{self.port}"

    def set_rate(
        self, namespace: str, rollout: str, revision: str, rps: float, error_ratio: float
    ) -> None:
        """Serve ``rps`` requests per second for the revision, ``error_ratio`` of them 5xx."""
        if rps < 0 or not 0 <= error_ratio <= 1:
            raise ValueError("rps must be >= 0 and error_ratio within 0..1")
        key = (namespace, rollout, revision)
        with self._lock:
            self._rates[key] = _Rate(rps, error_ratio)
            for code in ("200", "500"):
                self._requests.labels(*key, code)  # create the series at 0

    def stop(self) -> None:
        """Stop the ticker and the HTTP server."""
        self._stop.set()
        self._ticker.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            elapsed, last = now - last, now
            with self._lock:
                rates = list(self._rates.items())
            for key, rate in rates:
                total = rate.rps * elapsed
                if total <= 0:
                    continue
                errors = total * rate.error_ratio
                if errors > 0:
                    self._requests.labels(*key, "500").inc(errors)
                if total - errors > 0:
                    self._requests.labels(*key, "200").inc(total - errors)
