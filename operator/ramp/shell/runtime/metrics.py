"""The operator's own Prometheus metrics, and the HTTP server for ``/metrics`` and probes.

Series (``namespace`` and ``rollout`` label every per-Rollout series):

``ramp_rollout_info{namespace,rollout,stable_revision,canary_revision}``
    Always 1; the labels say which revisions are live.
``ramp_rollout_phase{namespace,rollout,phase}``
    1 for the Rollout's current phase, 0 for the other four (so ``== 1`` selects).
``ramp_rollout_weight_percent{namespace,rollout,kind}``
    The canary weight, ``kind`` = ``desired`` (the step's) or ``actual`` (ready pods).
``ramp_step_transitions_total{namespace,rollout}``
    Steps completed (one per ``StepCompleted`` Event).
``ramp_rollouts_completed_total{namespace,rollout}``
    Canaries promoted to stable (``RolloutCompleted`` Events).
``ramp_aborts_total{namespace,rollout,reason}``
    Aborts, by ``status.abortReason`` (``UserAbort``, ``ProgressDeadlineExceeded``,
    ``AnalysisFailed``, ...). ``sum by (reason)`` gives the operator-wide view.
``ramp_bluegreen_info{namespace,rollout,active_revision,preview_revision}``
    Blue-green Rollouts only, always 1: the revision the active Service selects and the
    one the preview Service selects (empty when it selects none).
``ramp_bluegreen_switches_total{namespace,rollout}``
    Switches of the active Service to a new revision (``Switched`` Events).
``ramp_bluegreen_flipbacks_total{namespace,rollout}``
    Flips of the active Service back to the warm revision: a failed post-promotion
    analysis, an abort after the switch or a ``rollback``.
``ramp_gate_measurements_total{verdict}``
    Analysis measurements by verdict (Pass, Fail, Inconclusive, Error), counted by
    :func:`record_measurement`.
``ramp_reconcile_duration_seconds``
    Histogram of one reconcile (read, plan, apply).
``ramp_reconciles_total{cause}``
    Reconciles that planned, by what woke them (``rollout``, ``child``, ``workload``,
    ``route``, ``measurement``, ``leader``, ``requeue``, ``resync``, ``retry``: see
    :class:`ramp.shell.controller.workqueue.Cause`).
``ramp_api_requests_total{kind}``
    Requests of the reconcile loop to the API server (``read``/``write``).
``ramp_release_{duration,progression,paused}_seconds{namespace,strategy,outcome}``
    Histograms of each release's total, progressing and held time
    (:mod:`ramp.shell.runtime.metrics_release`).
``ramp_leader``
    1 while this process may act (holds the Lease and its shard layout is the one acting,
    :mod:`ramp.shell.runtime.layout`; or leader election is off).

Everything is fed from the controller's observers (:meth:`OperatorMetrics.observe`, called
after each *applied* plan), so a standby replica, which applies nothing, reports no
per-Rollout series; a replica that loses the Lease stops reporting them at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ramp.api.analysis import Verdict
from ramp.api.rollout import Phase
from ramp.core.plan import Plan
from ramp.shell.runtime.metrics_release import ReleaseHistograms

log = logging.getLogger("ramp.metrics")  # its name before the shell package
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series

Key = tuple[str, str]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class RolloutSeries:
    """What the gauges say about one Rollout (from the last applied plan)."""

    phase: str
    stable_revision: str
    canary_revision: str
    desired_weight: int
    actual_weight: int
    active_revision: str | None = None
    """Blue-green only: the revision the active Service selects."""
    preview_revision: str = ""


class _RolloutGauges(Collector):
    """Per-Rollout gauges, built at scrape time from the last plan of each live Rollout."""

    def __init__(self, owner: OperatorMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "ramp_rollout_info",
            "Live revisions of a Rollout (always 1).",
            labels=["namespace", "rollout", "stable_revision", "canary_revision"],
        )
        phase = GaugeMetricFamily(
            "ramp_rollout_phase",
            "1 for the Rollout's current phase, 0 for the others.",
            labels=["namespace", "rollout", "phase"],
        )
        weight = GaugeMetricFamily(
            "ramp_rollout_weight_percent",
            "Canary weight in percent: desired (the step's) and actual (ready pods).",
            labels=["namespace", "rollout", "kind"],
        )
        bluegreen = GaugeMetricFamily(
            "ramp_bluegreen_info",
            "Blue-green: the revisions the active and preview Services select (always 1).",
            labels=["namespace", "rollout", "active_revision", "preview_revision"],
        )
        for (namespace, name), s in sorted(self.owner.rollouts().items()):
            info.add_metric([namespace, name, s.stable_revision, s.canary_revision], 1)
            if s.active_revision is not None:
                bluegreen.add_metric([namespace, name, s.active_revision, s.preview_revision], 1)
            for p in Phase:
                phase.add_metric([namespace, name, p.value], 1 if s.phase == p.value else 0)
            weight.add_metric([namespace, name, "desired"], s.desired_weight)
            weight.add_metric([namespace, name, "actual"], s.actual_weight)
        yield info
        yield bluegreen
        yield phase
        yield weight
        leader = GaugeMetricFamily(
            "ramp_leader", "1 while this process may act (holds the Lease, or no election)."
        )
        leader.add_metric([], 1 if self.owner.acting() else 0)
        yield leader
        causes = self.owner.reconciles_by_cause
        if causes is not None:
            reconciles = CounterMetricFamily(
                "ramp_reconciles", "Reconciles that planned, by what woke them.", labels=["cause"]
            )
            for cause, count in sorted(dict(causes).items()):
                reconciles.add_metric([str(cause)], count)
            yield reconciles
        counters = self.owner.api_counters
        if counters is not None:
            api = CounterMetricFamily(
                "ramp_api_requests",
                "Requests of the reconcile loop to the Kubernetes API server.",
                labels=["kind"],
            )
            api.add_metric(["read"], counters.reads)
            api.add_metric(["write"], counters.writes)
            yield api


class OperatorMetrics:
    """A registry of the operator's metrics, and the observer that feeds it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._rollouts: dict[Key, RolloutSeries] = {}
        self._abort_reasons: dict[Key, set[str]] = {}
        self.acting: Callable[[], bool] = lambda: True
        """Whether this process may act now (set to the controller's ``may_write``)."""
        self.live_keys: Callable[[], Iterable[Key]] | None = None
        """The Rollouts that still exist (the work queue's keys); others are dropped."""
        self.api_counters: Any = None
        """``ramp.shell.adapters.kube.ApiCounters`` of the reconcile loop, if any."""
        self.reconciles_by_cause: Mapping[str, int] | None = None
        """The controller's reconciles by cause (read at scrape time), if any."""
        self.step_transitions = Counter(
            "ramp_step_transitions",
            "Steps completed (StepCompleted Events).",
            ["namespace", "rollout"],
            registry=self.registry,
        )
        self.completions = Counter(
            "ramp_rollouts_completed",
            "Canaries promoted to stable (RolloutCompleted Events).",
            ["namespace", "rollout"],
            registry=self.registry,
        )
        self.aborts = Counter(
            "ramp_aborts",
            "Aborts by reason (status.abortReason).",
            ["namespace", "rollout", "reason"],
            registry=self.registry,
        )
        self.switches = Counter(
            "ramp_bluegreen_switches",
            "Blue-green: switches of the active Service to a new revision.",
            ["namespace", "rollout"],
            registry=self.registry,
        )
        self.flipbacks = Counter(
            "ramp_bluegreen_flipbacks",
            "Blue-green: flips of the active Service back to the warm revision.",
            ["namespace", "rollout"],
            registry=self.registry,
        )
        self.measurements = Counter(
            "ramp_gate_measurements",
            "Analysis measurements by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        for verdict in Verdict:
            self.measurements.labels(verdict=verdict.value)
        self.reconcile_duration = Histogram(
            "ramp_reconcile_duration_seconds",
            "Duration of one reconcile of one Rollout (read, plan, apply).",
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.releases = ReleaseHistograms(self.registry)
        self.registry.register(_RolloutGauges(self))

    # -- feeding -------------------------------------------------------------------

    def observe(self, namespace: str, name: str, plan: Plan, seconds: float) -> None:
        """Controller observer: called after each applied plan."""
        self.reconcile_duration.observe(seconds)
        self.releases.observe(namespace, plan.released)
        status = plan.status
        bg = status.blue_green
        with self._lock:
            before = self._rollouts.get((namespace, name))
        was_active = before.active_revision if before is not None else None
        now_active = bg.active_revision if bg is not None else None
        for event in plan.events:
            if event.reason == "StepCompleted":
                self.step_transitions.labels(namespace, name).inc()
            elif event.reason == "Aborted":
                reason = status.abort_reason or "Unknown"
                self.aborts.labels(namespace, name, reason).inc()
                with self._lock:
                    self._abort_reasons.setdefault((namespace, name), set()).add(reason)
            elif event.reason == "RolloutCompleted":
                self.completions.labels(namespace, name).inc()
            elif event.reason == "Switched":
                self.switches.labels(namespace, name).inc()
        if (
            was_active
            and now_active
            and was_active != now_active
            and not any(e.reason == "Switched" for e in plan.events)
        ):
            self.flipbacks.labels(namespace, name).inc()
        weights = status.weights
        series = RolloutSeries(
            phase=str(status.phase.value if status.phase else ""),
            stable_revision=status.stable_revision or "",
            canary_revision=status.canary_revision or "",
            desired_weight=weights.desired if weights else 0,
            actual_weight=weights.actual if weights else 0,
            active_revision=now_active if bg is not None else None,
            preview_revision=(bg.preview_revision or "") if bg is not None else "",
        )
        with self._lock:
            self._rollouts[(namespace, name)] = series

    def record_measurement(self, verdict: str) -> None:
        """Count one analysis measurement (``Pass``, ``Fail``, ``Inconclusive``, ``Error``)."""
        self.measurements.labels(verdict=str(verdict)).inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a Rollout that is gone."""
        with self._lock:
            self._rollouts.pop((namespace, name), None)
            reasons = self._abort_reasons.pop((namespace, name), set())
        for counter in (self.step_transitions, self.completions, self.switches, self.flipbacks):
            with contextlib.suppress(KeyError):
                counter.remove(namespace, name)
        for reason in reasons:
            with contextlib.suppress(KeyError):
                self.aborts.remove(namespace, name, reason)

    # -- reading -------------------------------------------------------------------

    def prune(self) -> None:
        """Forget Rollouts that no longer exist (those not in ``live_keys``)."""
        if self.live_keys is None:
            return
        live = set(self.live_keys())
        with self._lock:
            gone = [k for k in self._rollouts if k not in live]
            gone += [k for k in self._abort_reasons if k not in live and k not in gone]
        for key in gone:
            self.forget(*key)

    def rollouts(self) -> dict[Key, RolloutSeries]:
        """Series of the Rollouts this process acts on (none while it may not act)."""
        if not self.acting():
            return {}
        with self._lock:
            return dict(self._rollouts)

    def exposition(self) -> bytes:
        """The text exposition format of every series."""
        self.prune()
        return generate_latest(self.registry)


METRICS = OperatorMetrics()
"""The process-wide metrics (the operator serves these)."""


def record_measurement(verdict: str) -> None:
    """Count one analysis measurement by verdict in the process-wide metrics."""
    METRICS.record_measurement(verdict)


# -- HTTP: /metrics, /healthz, /readyz ------------------------------------------------------

HealthCheck = Callable[[], tuple[bool, str]]
"""A named health check returns (healthy, detail)."""


PROBES = ("/healthz", "/readyz")


class MetricsServer:
    """``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (readiness) over aiohttp.

    ``paths`` says which of them this server answers (the operator runs one for
    ``/metrics`` and one for the probes, on ports of their own); with ``auth``
    (:class:`ramp.shell.runtime.metrics_auth.MetricsAuth`), ``/metrics`` answers only a bearer
    token that the API server authenticates and authorizes.
    """

    def __init__(
        self,
        metrics: OperatorMetrics,
        host: str,
        port: int,
        health: dict[str, HealthCheck] | None = None,
        ready: Callable[[], bool] | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
        paths: tuple[str, ...] = ("/metrics", *PROBES),
        auth: Any = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.health = health or {}
        self.ready = ready or (lambda: True)
        self.status = status or dict
        self.paths = paths
        self.auth = auth
        self._runner: Any = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        from aiohttp import web

        app = web.Application()
        handlers = {"/metrics": self._metrics, "/healthz": self._healthz, "/readyz": self._readyz}
        for path in self.paths:
            app.router.add_get(path, handlers[path])
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web

        if self.auth is not None:
            decision = await self.auth.decide(request.headers.get("Authorization"), "/metrics")
            if not decision.allowed:
                headers = {"WWW-Authenticate": 'Bearer realm="ramp-operator"'}
                return web.Response(
                    status=decision.status,
                    text=decision.reason + "\n",
                    headers=headers if decision.status == 401 else None,
                )
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    def _checks(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, Any] = {}
        healthy = True
        for name, check in self.health.items():
            try:
                ok, detail = check()
            except Exception as exc:  # a broken check is an unhealthy check
                ok, detail = False, f"check failed: {exc}"
            results[name] = {"ok": ok, "detail": detail}
            healthy = healthy and ok
        return healthy, results

    async def _healthz(self, request: Any) -> Any:
        from aiohttp import web

        healthy, checks = self._checks()
        body = {"status": "ok" if healthy else "unhealthy", "checks": checks, **self.status()}
        return web.Response(
            status=200 if healthy else 503,
            text=json.dumps(body, sort_keys=True),
            content_type="application/json",
        )

    async def _readyz(self, request: Any) -> Any:
        from aiohttp import web

        ready = self.ready()
        body = {"status": "ready" if ready else "starting", **self.status()}
        return web.Response(
            status=200 if ready else 503,
            text=json.dumps(body, sort_keys=True),
            content_type="application/json",
        )


__all__ = [
    "METRICS",
    "PROBES",
    "MetricsServer",
    "OperatorMetrics",
    "RolloutSeries",
    "record_measurement",
]
