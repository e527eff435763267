"""Wire the operator together: API client, controller, metrics, leader election, kopf."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import kopf

import ramp.shell.handlers as handlers
from ramp.shell.adapters import notify
from ramp.shell.adapters.kube import load_client
from ramp.shell.controller.controller import Controller
from ramp.shell.controller.gates import provider_config
from ramp.shell.runtime.layout import elector_for
from ramp.shell.runtime.leader import GuardedKube, LeaderElector
from ramp.shell.runtime.lease import KubeLeaseStore, default_identity, default_namespace
from ramp.shell.runtime.metrics import METRICS, PROBES, MetricsServer, OperatorMetrics

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
    log.info("acting on %d known Rollout(s)", len(keys))
    for key in keys:
        controller.queue.kick(key)


def read_providers(args: argparse.Namespace) -> str | None:
    """The providers document: ``--prometheus-providers FILE``, else the environment."""
    from ramp.analysis.providers import PROVIDERS_ENV

    path = getattr(args, "prometheus_providers", None)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise SystemExit(f"--prometheus-providers {path}: {exc.strerror}") from None
    return os.environ.get(PROVIDERS_ENV) or None


def enforces_namespace(args: argparse.Namespace) -> bool:
    """Whether queries are scoped to the Rollout's namespace by default: ``auto`` (the
    default) scopes them unless the operator watches exactly one namespace (a cluster-wide
    install, a list or a pattern of namespaces: namespaces are tenants)."""
    mode = getattr(args, "prometheus_namespace_enforcement", "auto")
    if mode == "auto":
        watched = list(args.namespace or [])
        return len(watched) != 1 or any(ch in watched[0] for ch in "*?[!")
    return bool(mode == "on")


def build_elector(args: argparse.Namespace, controller: Controller) -> LeaderElector:
    namespace = args.leader_elect_namespace or default_namespace()
    api_client = load_client(args.kubeconfig)
    timeout = max(1.0, min(5.0, args.leader_elect_renew_deadline / 2))
    elector, _ = elector_for(
        getattr(args, "shard", None),
        args.leader_elect_lease_name,
        lambda name: KubeLeaseStore(api_client, namespace, name, request_timeout=timeout),
        args.leader_elect_identity or default_identity(),
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        renew_period=args.leader_elect_renew_period,
        retry_period=args.leader_elect_retry_period,
        clock=time.monotonic,
        on_started_leading=lambda: kick_all(controller),
    )
    return elector


async def run(args: argparse.Namespace, metrics: OperatorMetrics = METRICS) -> None:
    """Run until stopped (SIGINT/SIGTERM)."""
    kube = GuardedKube(load_client(args.kubeconfig))
    prometheus = provider_config(
        args.prometheus_allow,
        args.prometheus_token_secret,
        lambda namespace, name: kube.core.read_namespaced_secret(name, namespace),
        providers=read_providers(args),
        enforce_namespace=enforces_namespace(args),
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
    if args.prometheus_token_secret:
        from ramp.analysis.prometheus import parse_secret_ref, token_from_secret_data

        secret_ns, secret_name = parse_secret_ref(args.prometheus_token_secret)

        def read_token() -> str | None:
            secret = kube.core.read_namespaced_secret(secret_name, secret_ns)
            return token_from_secret_data(getattr(secret, "data", None))

        controller.gates.token_source = read_token
    if prometheus.providers:
        controller.gates.secret_reader = lambda namespace, name: kube.core.read_namespaced_secret(
            name, namespace
        )
    controller.gates.scheduler.per_namespace = max(
        1, getattr(args, "measurements_per_namespace", 4)
    )
    controller.gates.observers.append(lambda m: metrics.record_measurement(m.verdict.value))
    shard = getattr(args, "shard", None)
    if shard is not None:
        controller.owns = shard.owns
    exclude = list(getattr(args, "exclude_namespace", None) or [])
    if exclude:
        skip, owns = excluded(exclude), controller.owns
        controller.owns = lambda namespace, name: not skip(namespace) and owns(namespace, name)
    handlers.State.controller = controller
    kube.may_write = lambda: controller.may_write()

    elector: LeaderElector | None = None
    if args.leader_elect:
        elector = build_elector(args, controller)
        controller.may_write = elector.is_leader
        kube.write_budget = elector.write_budget

    namespaces: list[str] = list(args.namespace)
    ready = asyncio.Event()
    metrics.acting = lambda: controller.may_write()
    metrics.live_keys = controller.queue.keys
    metrics.api_counters = kube.counters
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
    if args.metrics_port >= 0:
        auth = None
        if getattr(args, "metrics_auth", "none") == "kubernetes":
            from ramp.shell.runtime.metrics_auth import KubeReviewer, MetricsAuth

            auth = MetricsAuth(KubeReviewer(load_client(args.kubeconfig)))
        server = MetricsServer(
            metrics, args.metrics_bind_address, args.metrics_port, paths=("/metrics",), auth=auth
        )
        servers.append(server)
        port = await server.start()
        log.info(
            "serving /metrics on http://%s:%d (%s)",
            args.metrics_bind_address,
            port,
            "bearer token: TokenReview and SubjectAccessReview" if auth else "no authentication",
        )
    if getattr(args, "health_port", -1) >= 0:
        probes = MetricsServer(
            metrics,
            args.health_bind_address,
            args.health_port,
            health={"loops": loops_alive},
            ready=ready.is_set,
            status=status,
            paths=PROBES,
        )
        servers.append(probes)
        port = await probes.start()
        log.info("serving /healthz and /readyz on http://%s:%d", args.health_bind_address, port)

    if elector is not None:
        tasks.append(asyncio.create_task(elector.run(), name="leader-election"))
    notifier = notify.from_args(args, kube, metrics.registry)  # one of kube.sinks
    if notifier is not None:
        tasks.append(asyncio.create_task(notifier.run(), name="notifications"))

    settings = kopf.OperatorSettings()
    if exact_namespaces(namespaces):
        # Plain namespace names need no namespace or CRD watches (and no RBAC for them).
        settings.scanning.disabled = True
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
            settings=settings,
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
