"""Analysis gates in the shell: resolve templates, take due measurements, feed the core.

Before a reconcile plans, the shell asks the core which analysis runs are in play
(:func:`ramp.core.plan.runs_in_play`: the current step's and the background's),
resolves them (AnalysisTemplates from the watch-fed index, the allow-list check), takes
the measurements that are due (async HTTP to Prometheus) and folds them into the run
counters kept in the status. The planner then judges from that data alone — pass, wait,
pause or abort is the pure core's decision (:mod:`ramp.core.verdicts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ramp.analysis.identity import identified
from ramp.analysis.kinds.base import Outcome
from ramp.analysis.prometheus import ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.analysis.run import Measurer, check_metrics, due_metrics, fold
from ramp.analysis.schedule import MeasureKey, MeasurementScheduler
from ramp.api.analysis import AnalysisRef, AnalysisTemplateSpec, Measurement, Metric, Verdict
from ramp.api.rollout import AnalysisRun, Rollout, RolloutStatus
from ramp.core.gating import BACKGROUND
from ramp.core.model import Event
from ramp.core.resolve import AnalysisSpecError, ResolvedAnalysis, resolve_analysis
from ramp.core.status import MAX_MEASUREMENTS
from ramp.core.verdicts import format_time, parse_time, verdict_changed

log = logging.getLogger("ramp.gates")  # its name before the shell package

TOKEN_REFRESH_SECONDS = 60.0
"""How often the Prometheus token Secret is read again (a rotation needs no restart)."""


def measurement_deadline(timeout: float) -> float:
    """Seconds a measurement may hold its namespace's slot: a compare metric's three
    queries run at once, each within ``timeout``; the margin covers judging."""
    return timeout + 5.0


TemplateReader = Callable[[str, str], dict[str, Any] | None]
"""``read(namespace, name)``: an AnalysisTemplate object, or None when absent."""
Resolved = dict[str, ResolvedAnalysis | str]


class Gates:
    """Resolves and measures the analysis runs in play."""

    def __init__(
        self,
        config: ProviderConfig | None,
        read_template: TemplateReader,
        token_source: Callable[[], str | None] | None = None,
    ) -> None:
        self.config = config or ProviderConfig()
        self.read_template = read_template
        self.token_source = token_source
        self.secret_reader: Callable[[str, str], Any] | None = None
        """Reads a Secret (``namespace, name``): the providers' tokens are read again."""
        self._token_read_at = time.monotonic()
        self._provider: Measurer | None = None
        self.scheduler = MeasurementScheduler()
        """Takes the measurements off the reconcile path (per-namespace capacity)."""
        self.observers: list[Callable[[Measurement], None]] = []
        """Called for every measurement whose status was written (the operator's metrics)."""

    @property
    def provider(self) -> Measurer:
        if self._provider is None:
            self._provider = Measurer(self.config)
        return self._provider

    def refresh_token(self) -> None:
        """Read the token Secret again when it is due (blocking: call from a thread)."""
        if self.token_source is None and self.secret_reader is None:
            return
        if time.monotonic() - self._token_read_at < TOKEN_REFRESH_SECONDS:
            return
        self._token_read_at = time.monotonic()
        self._refresh_provider_tokens()
        if self.token_source is None:
            return
        try:
            token = self.token_source()
        except Exception as exc:  # keep the last good token; say why without it
            log.warning("cannot read the Prometheus token Secret again: %s", type(exc).__name__)
            return
        if token != self.config.token:
            self.config = self.config.with_token(token)
            self.provider.set_config(self.config)
            log.info("the Prometheus token changed; using the new one")

    def _refresh_provider_tokens(self) -> None:
        from ramp.analysis.prometheus import parse_secret_ref, token_from_secret_data

        if self.secret_reader is None:
            return
        for endpoint in self.config.providers:
            if not endpoint.token_secret:
                continue
            try:
                secret = self.secret_reader(*parse_secret_ref(endpoint.token_secret))
                token = token_from_secret_data(
                    getattr(secret, "data", None), endpoint.token_secret_key
                )
            except Exception as exc:  # keep the last good token; say why without it
                log.warning(
                    "cannot read the token Secret of %s again: %s",
                    endpoint.address,
                    type(exc).__name__,
                )
                continue
            if token != endpoint.token:
                self.config = self.config.with_provider_token(endpoint.address, token)
                self.provider.set_config(self.config)
                log.info("the token of %s changed; using the new one", endpoint.address)

    async def close(self) -> None:
        await self.scheduler.close()
        if self._provider is not None:
            await self._provider.close()

    def resolve(
        self, runs: Mapping[str, AnalysisRef], rollout: Rollout, namespace: str
    ) -> Resolved:
        """Resolve every run (blocking API reads on an index miss: call from a thread)."""
        out: Resolved = {}
        for name, ref in runs.items():
            templates: dict[str, AnalysisTemplateSpec] = {}
            try:
                for tref in ref.templates:
                    obj = self.read_template(namespace, tref.template_name)
                    if obj is not None:
                        templates[tref.template_name] = AnalysisTemplateSpec.model_validate(
                            obj.get("spec") or {}
                        )
                resolved = resolve_analysis(ref, templates)
            except AnalysisSpecError as exc:
                out[name] = f"analysis {name}: {exc}"
                continue
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                out[name] = f"analysis {name}: AnalysisTemplate spec.{where}: {err['msg']}"
                continue
            context = self.context(rollout, namespace, resolved.args)
            problems = check_metrics(resolved.metrics, context, self.config)
            out[name] = f"analysis {name} refused: " + "; ".join(problems) if problems else resolved
        return out

    @staticmethod
    def context(rollout: Rollout, namespace: str, args: Mapping[str, str]) -> QueryContext:
        status = rollout.status or RolloutStatus()
        return QueryContext(
            rollout=str(rollout.metadata.get("name", "")),
            namespace=namespace,
            canary_revision=status.canary_revision,
            stable_revision=status.stable_revision,
            args=dict(args),
        )

    async def measure(
        self, resolved: Resolved, rollout: Rollout, namespace: str, now: datetime
    ) -> tuple[RolloutStatus, list[Event], list[Measurement]]:
        """Take what is due: the status with updated runs and measurements, the Events of
        verdict changes and the new measurements (report them once the status is written)."""
        status = (rollout.status or RolloutStatus()).model_copy(deep=True)
        runs = {
            r.name: r for r in status.analysis_runs or [] if r.revision == status.canary_revision
        }
        new_measurements: list[Measurement] = []
        events: list[Event] = []
        for name, analysis in resolved.items():
            if isinstance(analysis, str):
                continue
            run = runs.get(name) or AnalysisRun(
                name=name, revision=status.canary_revision or "", started_at=format_time(now)
            )
            before = {m.name: m for m in run.metrics}
            context = self.context(rollout, namespace, analysis.args)
            due = due_metrics(
                analysis.metrics,
                before,
                parse_time(run.started_at),
                now,
                continuous=name == BACKGROUND,
            )
            taken_now: list[tuple[Metric, Measurement]] = []
            for metric in due:
                key: MeasureKey = (
                    namespace,
                    context.rollout,
                    name,
                    metric.name,
                    run.revision,
                )
                finished = self.scheduler.take(key)
                if finished is not None:
                    taken_now.append((metric, finished))
                else:  # the checks name their Job and idempotency key from its identity
                    run_context = identified(context, rollout, run, before.get(metric.name))
                    self.submit(key, metric, run_context)
            measured = fold(analysis.metrics, before, taken_now, continuous=name == BACKGROUND)
            run.metrics = [
                measured.results[m.name] for m in analysis.metrics if m.name in measured.results
            ]
            runs[name] = run
            for measurement in measured.measurements:
                new_measurements.append(measurement)
                after = measured.results[measurement.metric]
                if verdict_changed(before.get(measurement.metric), after):
                    bad = measurement.verdict is not Verdict.PASS
                    value = measurement.value if measurement.value is not None else "no value"
                    events.append(
                        Event(
                            "Warning" if bad else "Normal",
                            f"Analysis{measurement.verdict.value}",
                            f"{name} metric {measurement.metric}: {measurement.verdict.value} "
                            f"(value {value}): {measurement.message or ''}",
                        )
                    )
        status.analysis_runs = list(runs.values()) or None
        if new_measurements:
            kept = [*(status.measurements or []), *new_measurements]
            status.measurements = kept[-MAX_MEASUREMENTS:]
        return status, events, new_measurements

    def submit(self, key: MeasureKey, metric: Metric, context: QueryContext) -> None:
        """Measure ``metric`` in the background (no-op while it is being measured)."""
        provider = self.provider
        analysis = key[2]
        timeout = metric.timeout_seconds

        def late() -> Measurement:  # the provider describes what was asked
            message = (
                f"the measurement did not finish within {measurement_deadline(timeout):g}s "
                f"(timeout {timeout:g}s)"
            )
            outcome = Outcome(Verdict.ERROR, message, query=provider.describe(metric, context))
            return provider.record(metric, context, outcome, analysis)

        self.scheduler.submit(
            key,
            lambda: provider.measure(metric, context, analysis=analysis),
            measurement_deadline(timeout),
            late,
        )

    def pending(self, namespace: str, name: str) -> bool:
        """Whether measurements of this Rollout are in flight (its reconcile then waits
        for their completion, which wakes it, instead of looking again at once)."""
        return self.scheduler.pending(namespace, name) > 0

    def report(self, measurements: list[Measurement]) -> None:
        for measurement in measurements:
            for observer in self.observers:
                observer(measurement)


def provider_config(
    allow: list[str],
    token_secret: str | None,
    read_secret: Callable[[str, str], Any],
    *,
    providers: str | None = None,
    enforce_namespace: bool = False,
) -> ProviderConfig:
    """The Prometheus settings from the operator's flags and environment.

    ``token_secret`` is ``NAMESPACE/NAME`` of a Secret whose ``token`` key holds the
    bearer token; ``read_secret(namespace, name)`` returns the Secret (its ``data``).
    ``providers`` is the providers document (``--prometheus-providers`` file or
    ``RAMP_PROMETHEUS_PROVIDERS``); each provider's token is read from its own Secret.
    Errors name the flag and the Secret, never the token.
    """
    import dataclasses

    from ramp.analysis.providers import PROVIDERS_ENV, parse_providers

    token = None
    if token_secret:
        token = _read_token(read_secret, token_secret, "token", "--prometheus-token-secret")
    try:
        config = ProviderConfig.from_env_and_args(allow, token=token)
    except ValueError as exc:
        raise SystemExit(f"--prometheus-allow: {exc}") from None
    plain = [a for a in config.allowed_addresses if not a.strip().lower().startswith("https:")]
    if token and plain:
        log.warning(
            "the Prometheus token is sent only over https: %s will be queried without it",
            ", ".join(plain),
        )
    try:
        endpoints = parse_providers(providers or "", PROVIDERS_ENV) if providers else ()
        endpoints = tuple(
            dataclasses.replace(
                e,
                token=_read_token(
                    read_secret, e.token_secret, e.token_secret_key, f"provider {e.address}"
                ),
            )
            if e.token_secret
            else e
            for e in endpoints
        )
        return dataclasses.replace(config, providers=endpoints, enforce_namespace=enforce_namespace)
    except ValueError as exc:
        raise SystemExit(f"Prometheus providers: {exc}") from None


def _read_token(read_secret: Callable[[str, str], Any], ref: str, key: str, what: str) -> str:
    from ramp.analysis.prometheus import parse_secret_ref, token_from_secret_data

    namespace, name = parse_secret_ref(ref)
    try:
        secret = read_secret(namespace, name)
    except Exception as exc:
        raise SystemExit(
            f"{what}: cannot read the Secret {namespace}/{name} "
            f"({getattr(exc, 'reason', type(exc).__name__)})"
        ) from None
    try:
        return token_from_secret_data(getattr(secret, "data", None), key)
    except ValueError as exc:
        raise SystemExit(f"{what}: Secret {namespace}/{name}: {exc}") from None
