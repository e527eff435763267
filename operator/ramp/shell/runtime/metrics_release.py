"""Duration histograms of releases, fed from the plans that end one (``Plan.released``).

``ramp_release_duration_seconds{namespace,strategy,outcome}``
    A release's total time, from its revision becoming the canary (or green) to its
    promotion (``Completed``), abort (``Aborted``) or replacement (``Superseded``).
``ramp_release_progression_seconds{namespace,strategy,outcome}``
    The part of it not held (timed pauses, analysis and scaling included).
``ramp_release_paused_seconds{namespace,strategy,outcome}``
    The part of it spent in the phase ``Paused`` (``spec.paused``, an indefinite pause
    step waiting for a promote, an inconclusive gate, ...).

The series of a namespace exist at zero from the first Rollout seen there, so that the
first release that ends is an increase that ``rate()`` and ``increase()`` see. How the
times are measured: :mod:`ramp.core.release_clock`.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Histogram

from ramp.core.release_clock import OUTCOMES, ReleaseEnd

RELEASE_BUCKETS = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
)  # fmt: skip
"""Seconds: from a quick canary to a release held over a day."""
STRATEGIES = ("canary", "blueGreen")
LABELS = ("namespace", "strategy", "outcome")


class ReleaseHistograms:
    """The three histograms of release durations, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Histogram(
            "ramp_release_duration_seconds",
            "Total time of a release, from start to promotion, abort or replacement.",
            LABELS,
            buckets=RELEASE_BUCKETS,
            registry=registry,
        )
        self.progression = Histogram(
            "ramp_release_progression_seconds",
            "Time of a release not held in the phase Paused.",
            LABELS,
            buckets=RELEASE_BUCKETS,
            registry=registry,
        )
        self.paused = Histogram(
            "ramp_release_paused_seconds",
            "Time of a release held in the phase Paused.",
            LABELS,
            buckets=RELEASE_BUCKETS,
            registry=registry,
        )
        self._lock = threading.Lock()
        self._namespaces: set[str] = set()

    def prime(self, namespace: str) -> None:
        """Create a namespace's series at zero (once)."""
        with self._lock:
            if namespace in self._namespaces:
                return
            self._namespaces.add(namespace)
        for histogram in (self.total, self.progression, self.paused):
            for strategy in STRATEGIES:
                for outcome in OUTCOMES:
                    histogram.labels(namespace, strategy, outcome)

    def observe(self, namespace: str, end: ReleaseEnd | None) -> None:
        """Prime ``namespace``; record ``end`` if a release ended."""
        self.prime(namespace)
        if end is None:
            return
        labels = (namespace, end.strategy, end.outcome)
        self.total.labels(*labels).observe(end.total_seconds)
        self.progression.labels(*labels).observe(end.progressing_seconds)
        self.paused.labels(*labels).observe(end.paused_seconds)


__all__ = ["RELEASE_BUCKETS", "ReleaseHistograms"]
