"""Wire the operator together: API client, controller, metrics, leader election, kopf."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import kopf
from kopf._cogs.structs.references import Insights

import ramp.shell.handlers as handlers
from ramp.shell.adapters import notify
from ramp.shell.adapters.kube import load_client
from ramp.shell.adapters.kube_watch import AsyncKube
from ramp.shell.controller.controller import Controller
from ramp.shell.controller.gates import provider_config
from ramp.shell.controller.workqueue import Cause
from ramp.shell.runtime.child_watch import watch_children
from ramp.shell.runtime.layout import elector_for
from ramp.shell.runtime.leader import GuardedKube, LeaderElector
from ramp.shell.runtime.lease import KubeLeaseStore, default_identity, default_namespace
from ramp.shell.runtime.metrics import METRICS, PROBES, MetricsServer, OperatorMetrics
from ramp.shell.runtime.namespaces import keep_namespaces
from ramp.shell.runtime.route_watch import watch_routes
from ramp.shell.runtime.settings import Settings

log = logging.getLogger("ramp.runtime")  # its name before the shell package


def exact_namespaces(patterns: list[str]) -> bool:
    """Whether every ``--namespace`` is a plain name (no kopf glob or negation)."""
    return bool(patterns) and not any(set(p) & set("*?![],") for p in patterns)


def excluded(patterns: list[str]) -> Callable[[str], bool]:
    """Whether a namespace matches one of ``--exclude-namespace`` (shell-style patterns).

    >>> skip = excluded(["kube-*", "ops"])
    >>> skip("kube-system"), skip("ops"), skip("shop")
    (True, True, False)
    """
    import fnmatch

    return lambda namespace: any(fnmatch.fnmatchcase(namespace, p) for p in patterns)


def kick_all(controller: Controller) -> None:
    """Reconcile every Rollout known to the watches (e.g. on gaining the Lease)."""
    keys = list(controller.queue.keys())
    controller.deferred.clear()  # every one is kicked
    held = getattr(controller.kube, "held", None)
    if held:  # refused before leadership changed hands: another process may have acted
        held.clear()
    log.info("acting on %d known Rollout(s)", len(keys))
    for key in keys:
        controller.queue.kick(key, Cause.LEADER)


def read_providers(settings: Settings) -> str | None:
    """The providers document: ``--prometheus-providers FILE``, else the environment."""
    from ramp.analysis.providers import PROVIDERS_ENV

    path = settings.prometheus_providers
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise SystemExit(f"--prometheus-providers {path}: {exc.strerror}") from None
    return os.environ.get(PROVIDERS_ENV) or None


def enforces_namespace(settings: Settings) -> bool:
    """Whether queries are scoped to the Rollout's namespace by default: ``auto`` (the
    default) scopes them unless the operator watches exactly one namespace (a cluster-wide
    install, a list or a pattern of namespaces: namespaces are tenants)."""
    mode = settings.prometheus_namespace_enforcement
    if mode == "auto":
        watched = list(settings.namespace or [])
        return len(watched) != 1 or any(ch in watched[0] for ch in "*?[!")
    return bool(mode == "on")


def build_elector(settings: Settings, controller: Controller) -> LeaderElector:
    namespace = settings.leader_elect_namespace or default_namespace()
    api_client = load_client(settings.kubeconfig)
    timeout = max(1.0, min(5.0, settings.leader_elect_renew_deadline / 2))
    elector, _ = elector_for(
        settings.shard,
        settings.leader_elect_lease_name,
        lambda name: KubeLeaseStore(api_client, namespace, name, request_timeout=timeout),
        settings.leader_elect_identity or default_identity(),
        lease_duration=settings.leader_elect_lease_duration,
        renew_deadline=settings.leader_elect_renew_deadline,
        renew_period=settings.leader_elect_renew_period,
        retry_period=settings.leader_elect_retry_period,
        clock=time.monotonic,
        on_started_leading=lambda: kick_all(controller),
        on_leading=controller.kick_deferred,
    )
    return elector


def wire_checks(measurer: Any, kube: Any) -> None:
    """The checks' access: Jobs (created only while this process may write) and the
    values of Secrets of a Rollout's namespace (header values, signing keys)."""
    from ramp.analysis.jobcheck import KubeJobs
    from ramp.analysis.providers import token_from_secret_data

    jobs = KubeJobs(kube.api_client)
    jobs.may_write = lambda: bool(kube.may_write())
    measurer.jobs = jobs

    def read_secret(namespace: str, name: str, key: str) -> str:
        secret = kube.core.read_namespaced_secret(name, namespace)
        return token_from_secret_data(getattr(secret, "data", None), key)

    measurer.read_secret = read_secret


async def run(settings: Settings, metrics: OperatorMetrics = METRICS) -> None:
    """Run until stopped (SIGINT/SIGTERM)."""
    kube = GuardedKube(load_client(settings.kubeconfig))
    prometheus = provider_config(
        list(settings.prometheus_allow),
        settings.prometheus_token_secret,
        lambda namespace, name: kube.core.read_namespaced_secret(name, namespace),
        providers=read_providers(settings),
        enforce_namespace=enforces_namespace(settings),
    )
    controller = Controller(
        kube,
        children=handlers.children_of,
        observers=[metrics.observe],
        prometheus=prometheus,
        templates=handlers.template_of,
        history=handlers.history_of,
        endpoints=handlers.endpoints_of,
    )
    if settings.prometheus_token_secret:
        from ramp.analysis.prometheus import parse_secret_ref, token_from_secret_data

        secret_ns, secret_name = parse_secret_ref(settings.prometheus_token_secret)

        def read_token() -> str | None:
            secret = kube.core.read_namespaced_secret(secret_name, secret_ns)
            return token_from_secret_data(getattr(secret, "data", None))

        controller.gates.token_source = read_token
    if prometheus.providers:
        controller.gates.secret_reader = lambda namespace, name: kube.core.read_namespaced_secret(
            name, namespace
        )
    wire_checks(controller.gates.provider, kube)  # web, job and webhook metrics
    controller.queue.window = settings.coalesce_window
    kube.child_kind = settings.children
    controller.gates.scheduler.per_namespace = max(1, settings.measurements_per_namespace)
    controller.gates.observers.append(lambda m: metrics.record_measurement(m.verdict.value))
    shard = settings.shard
    if shard is not None:
        controller.owns = shard.owns
    exclude = list(settings.exclude_namespace)
    if exclude:
        skip, owns = excluded(exclude), controller.owns
        controller.owns = lambda namespace, name: not skip(namespace) and owns(namespace, name)
    handlers.State.controller = controller
    kube.may_write = lambda: controller.may_write()

    elector: LeaderElector | None = None
    if settings.leader_elect:
        elector = build_elector(settings, controller)
        controller.may_write = elector.is_leader
        controller.holds = lambda key: key in kube.held
        controller.post_held = kube.post_held
        kube.write_budget = elector.write_budget

    namespaces: list[str] = list(settings.namespace)
    ready = asyncio.Event()
    metrics.acting = lambda: controller.may_write()
    metrics.live_keys = controller.queue.keys
    metrics.api_counters = kube.counters
    metrics.reconciles_by_cause = controller.reconciles_by_cause
    tasks: list[asyncio.Task[Any]] = []

    def status() -> dict[str, Any]:
        out: dict[str, Any] = {"acting": controller.may_write()}
        if elector is not None:
            out["leader"] = {"identity": elector.identity, "holder": elector.holder}
        return out

    def loops_alive() -> tuple[bool, str]:
        dead = [t.get_name() for t in tasks if t.done()]
        return (not dead, f"stopped: {', '.join(dead)}" if dead else "running")

    servers: list[MetricsServer] = []
    if settings.metrics_port >= 0:
        auth = None
        if settings.metrics_auth == "kubernetes":
            from ramp.shell.runtime.metrics_auth import KubeReviewer, MetricsAuth

            auth = MetricsAuth(KubeReviewer(load_client(settings.kubeconfig)))
        server = MetricsServer(
            metrics,
            settings.metrics_bind_address,
            settings.metrics_port,
            paths=("/metrics",),
            auth=auth,
        )
        servers.append(server)
        port = await server.start()
        log.info(
            "serving /metrics on http://%s:%d (%s)",
            settings.metrics_bind_address,
            port,
            "bearer token: TokenReview and SubjectAccessReview" if auth else "no authentication",
        )
    if settings.health_port >= 0:
        probes = MetricsServer(
            metrics,
            settings.health_bind_address,
            settings.health_port,
            health={"loops": loops_alive},
            ready=ready.is_set,
            status=status,
            paths=PROBES,
        )
        servers.append(probes)
        port = await probes.start()
        log.info("serving /healthz and /readyz on http://%s:%d", settings.health_bind_address, port)

    if elector is not None:
        tasks.append(asyncio.create_task(elector.run(), name="leader-election"))
    notifier = notify.from_settings(settings.notify, kube, metrics.registry)  # one of kube.sinks
    if notifier is not None:
        tasks.append(asyncio.create_task(notifier.run(), name="notifications"))

    kopf_settings = kopf.OperatorSettings()
    insights = Insights()
    if exact_namespaces(namespaces):
        # Plain namespace names need no namespace or CRD watches (and no RBAC for them).
        kopf_settings.scanning.disabled = True
    elif namespaces:  # patterns: repair what kopf's namespace watch misses
        names = lambda: [n.metadata.name for n in kube.core.list_namespace().items]  # noqa: E731
        tasks.append(
            asyncio.create_task(keep_namespaces(insights, namespaces, names), name="namespaces")
        )
    children = AsyncKube(load_client(settings.kubeconfig).configuration)
    child_watch = asyncio.create_task(watch_children(children, insights), name="child-watch")
    routes = AsyncKube(load_client(settings.kubeconfig).configuration)
    route_watch = asyncio.create_task(
        watch_routes(routes, insights, controller.routes), name="route-watch"
    )
    tasks += [child_watch, route_watch]
    handlers.State.stopped_with_workers = [child_watch, route_watch]
    log.info(
        "ramp-operator starting, watching %s%s%s%s",
        ", ".join(namespaces) if namespaces else "all namespaces",
        f" except {', '.join(exclude)}" if exclude else "",
        f"; shard {shard}" if shard else "",
        f"; leader election as {elector.identity}" if elector else "",
    )
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            settings=kopf_settings,
            insights=insights,
            ready_flag=ready,
        )
    finally:
        if elector is not None:
            await elector.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in servers:
            await server.stop()
