"""The operator's settings: one typed, frozen object built once in ``ramp.__main__`` from
the command line and the environment (the flags are parsed there and nowhere else)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ramp.shell.adapters.notify import NotifySettings
from ramp.shell.runtime.shard import Shard


@dataclass(frozen=True)
class Settings:
    """What ``ramp-operator --help`` lists, typed (see ``ramp.__main__`` for each flag)."""

    namespace: tuple[str, ...]
    kubeconfig: str | None
    exclude_namespace: tuple[str, ...]
    shard: Shard | None
    log_format: str
    verbose: bool
    prometheus_allow: tuple[str, ...]
    prometheus_token_secret: str | None
    prometheus_providers: str | None
    prometheus_namespace_enforcement: str
    measurements_per_namespace: int
    coalesce_window: float
    children: str
    """The kind of a new revision's child: "Deployment" or "ReplicaSet" (``--children``)."""
    notify: NotifySettings
    metrics_port: int
    metrics_bind_address: str
    metrics_auth: str
    health_port: int
    health_bind_address: str
    leader_elect: bool
    leader_elect_namespace: str | None
    leader_elect_lease_name: str
    leader_elect_identity: str | None
    leader_elect_lease_duration: float
    leader_elect_renew_deadline: float
    leader_elect_renew_period: float
    leader_elect_retry_period: float

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """The settings of parsed flags (``ramp.__main__.parse_args``)."""
        return cls(
            namespace=tuple(args.namespace),
            kubeconfig=args.kubeconfig,
            exclude_namespace=tuple(args.exclude_namespace),
            shard=args.shard,
            log_format=args.log_format,
            verbose=args.verbose,
            prometheus_allow=tuple(args.prometheus_allow),
            prometheus_token_secret=args.prometheus_token_secret,
            prometheus_providers=args.prometheus_providers,
            prometheus_namespace_enforcement=args.prometheus_namespace_enforcement,
            measurements_per_namespace=args.measurements_per_namespace,
            coalesce_window=args.coalesce_window,
            children="ReplicaSet" if args.children == "replicasets" else "Deployment",
            notify=NotifySettings(
                config=args.notify_config,
                secret=args.notify_secret,
                allow=tuple(args.notify_allow),
            ),
            metrics_port=args.metrics_port,
            metrics_bind_address=args.metrics_bind_address,
            metrics_auth=args.metrics_auth,
            health_port=args.health_port,
            health_bind_address=args.health_bind_address,
            leader_elect=args.leader_elect,
            leader_elect_namespace=args.leader_elect_namespace,
            leader_elect_lease_name=args.leader_elect_lease_name,
            leader_elect_identity=args.leader_elect_identity,
            leader_elect_lease_duration=args.leader_elect_lease_duration,
            leader_elect_renew_deadline=args.leader_elect_renew_deadline,
            leader_elect_renew_period=args.leader_elect_renew_period,
            leader_elect_retry_period=args.leader_elect_retry_period,
        )


__all__ = ["Settings"]
