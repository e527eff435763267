"""``python -m ramp`` / ``ramp-operator``: run the operator against the current kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from ramp import __version__
from ramp.shell.runtime.shard import parse_shard


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ramp-operator",
        description="Ramp: progressive delivery for Kubernetes. Watches Rollouts "
        "(ramp.dev/v1alpha1) and drives replica-ratio canaries.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig file (default: $KUBECONFIG, then in-cluster)",
    )
    parser.add_argument(
        "--prometheus-allow",
        action="append",
        default=[],
        metavar="URL",
        help="a Prometheus address Rollouts may query (repeatable; also RAMP_PROMETHEUS_ALLOW)",
    )
    parser.add_argument(
        "--prometheus-token-secret",
        metavar="NAMESPACE/NAME",
        help="Secret whose 'token' key is the bearer token for Prometheus (sent only over https)",
    )
    parser.add_argument(
        "--prometheus-providers",
        metavar="FILE",
        help="YAML/JSON list of Prometheus providers: address, tokenSecret, caFile, "
        "namespaces allowed to use it, namespace enforcement (also RAMP_PROMETHEUS_PROVIDERS "
        "with the document itself)",
    )
    parser.add_argument(
        "--measurements-per-namespace",
        type=int,
        default=int(os.environ.get("RAMP_MEASUREMENTS_PER_NAMESPACE", "4")),
        metavar="N",
        help="analysis measurements in flight at once for the Rollouts of one namespace "
        "(default 4; also RAMP_MEASUREMENTS_PER_NAMESPACE)",
    )
    parser.add_argument(
        "--prometheus-namespace-enforcement",
        choices=["auto", "on", "off"],
        default=os.environ.get("RAMP_PROMETHEUS_NAMESPACE_ENFORCEMENT", "auto"),
        help='scope every query to the Rollout\'s namespace (a namespace="..." matcher in '
        "every selector); auto: on unless watching one namespace (default; also "
        "RAMP_PROMETHEUS_NAMESPACE_ENFORCEMENT)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("RAMP_LOG_FORMAT", "text"),
        help="log format: text, or one JSON object per line (also RAMP_LOG_FORMAT)",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=parse_shard(os.environ.get("RAMP_SHARD", "")),
        metavar="I/N",
        help="handle only the Rollouts of shard I of N (stable hash of namespace/name); "
        "the Lease becomes <lease>-shard-I (also RAMP_SHARD)",
    )
    parser.add_argument(
        "--coalesce-window",
        type=_window,
        default=os.environ.get("RAMP_COALESCE_WINDOW", "0.075"),  # a string: type applies
        metavar="SECONDS",
        help="a Rollout's watch events that come within this many seconds of each other "
        "are one reconcile (default 0.075, at most 1; 0: each event that finds the Rollout "
        "idle reconciles at once; also RAMP_COALESCE_WINDOW)",
    )
    parser.add_argument(
        "--children",
        choices=["deployments", "replicasets"],
        default=os.environ.get("RAMP_CHILDREN", "deployments"),
        help="what a new revision's child is: a Deployment (default), or a ReplicaSet that "
        "Ramp scales itself, without the Deployment controller's work per step (children of "
        "either kind already there are kept and managed as they are; also RAMP_CHILDREN)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"ramp-operator {__version__}")

    from ramp.shell.adapters.notify.config import CONFIG_KEY

    notifications = parser.add_argument_group("notifications (webhook, CloudEvents, Slack)")
    notifications.add_argument(
        "--notify-config",
        default=os.environ.get("RAMP_NOTIFY_CONFIG"),
        metavar="NAMESPACE/NAME",
        help=f"ConfigMap whose '{CONFIG_KEY}' lists the sinks (also RAMP_NOTIFY_CONFIG)",
    )
    notifications.add_argument(
        "--notify-secret",
        default=os.environ.get("RAMP_NOTIFY_SECRET"),
        metavar="NAMESPACE/NAME",
        help="Secret with the sinks' URLs and tokens (default: the ConfigMap's name)",
    )
    notifications.add_argument(
        "--notify-allow",
        action="append",
        default=[],
        metavar="URL",
        help="a URL prefix sinks may post to (repeatable; also RAMP_NOTIFY_ALLOW)",
    )

    serving = parser.add_argument_group("metrics and health probes")
    serving.add_argument(
        "--metrics-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="port of /metrics (default 8080; 0 picks a free port, -1 serves nothing)",
    )
    serving.add_argument(
        "--metrics-bind-address",
        default=os.environ.get("RAMP_METRICS_BIND_ADDRESS", "127.0.0.1"),
        metavar="ADDRESS",
        help="address to serve /metrics on (default $RAMP_METRICS_BIND_ADDRESS, else "
        "127.0.0.1; the container image sets 0.0.0.0)",
    )
    serving.add_argument(
        "--metrics-auth",
        choices=["kubernetes", "none"],
        default=os.environ.get("RAMP_METRICS_AUTH", "kubernetes"),
        help="who may read /metrics: kubernetes (default) - a bearer token the API server "
        "authenticates (TokenReview) and authorizes for get on /metrics "
        "(SubjectAccessReview); none - anyone, only on a loopback address",
    )
    serving.add_argument(
        "--health-port",
        type=int,
        default=8081,
        metavar="PORT",
        help="port of /healthz and /readyz, no authentication (default 8081; 0 picks a "
        "free port, -1 serves nothing)",
    )
    serving.add_argument(
        "--health-bind-address",
        default=os.environ.get("RAMP_HEALTH_BIND_ADDRESS"),
        metavar="ADDRESS",
        help="address to serve the probes on (default: the metrics bind address)",
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave the Rollouts of these namespaces alone (repeatable; shell-style "
        "patterns such as kube-*; also RAMP_EXCLUDE_NAMESPACES, comma-separated)",
    )

    election = parser.add_argument_group(
        "leader election (coordination.k8s.io Lease: with several replicas only the holder acts)"
    )
    election.add_argument(
        "--leader-elect", action="store_true", help="act only while holding the Lease"
    )
    election.add_argument(
        "--leader-elect-namespace",
        metavar="NAMESPACE",
        help="namespace of the Lease (default: $POD_NAMESPACE, the in-cluster namespace, "
        "else default)",
    )
    election.add_argument(
        "--leader-elect-lease-name",
        default="ramp-operator",
        metavar="NAME",
        help="name of the Lease (default ramp-operator)",
    )
    election.add_argument(
        "--leader-elect-identity",
        metavar="ID",
        help="this candidate's identity (default: $POD_NAME, else host name and a random id)",
    )
    election.add_argument(
        "--leader-elect-lease-duration",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="how long a Lease not renewed stays with its holder (default 15)",
    )
    election.add_argument(
        "--leader-elect-renew-deadline",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="the holder stops acting when it has not renewed for this long; must be "
        "below the lease duration (default 10)",
    )
    election.add_argument(
        "--leader-elect-renew-period",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how often the holder renews (default 5)",
    )
    election.add_argument(
        "--leader-elect-retry-period",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="how often a standby tries to take the Lease, and a holder retries a failed "
        "renewal (default 2)",
    )
    args = parser.parse_args(argv)
    if args.leader_elect and not (
        0
        < args.leader_elect_renew_period
        < args.leader_elect_renew_deadline
        < args.leader_elect_lease_duration
    ):
        parser.error(
            "leader election needs renew period < renew deadline < lease duration "
            f"(got {args.leader_elect_renew_period}, {args.leader_elect_renew_deadline}, "
            f"{args.leader_elect_lease_duration})"
        )
    if args.leader_elect and args.leader_elect_retry_period >= args.leader_elect_lease_duration:
        parser.error("leader election needs retry period < lease duration")
    if args.health_bind_address is None:
        args.health_bind_address = args.metrics_bind_address
    if args.metrics_port >= 0 and args.metrics_port == args.health_port != 0:
        parser.error("--metrics-port and --health-port must differ (the probes have their own)")
    if (
        args.metrics_auth == "none"
        and args.metrics_port >= 0
        and not _loopback(args.metrics_bind_address)
    ):
        parser.error(
            "--metrics-auth=none serves every tenant's Rollouts to anyone: only on a "
            f"loopback address (not {args.metrics_bind_address})"
        )
    args.exclude_namespace += [
        p.strip() for p in os.environ.get("RAMP_EXCLUDE_NAMESPACES", "").split(",") if p.strip()
    ]
    return args


def _loopback(address: str) -> bool:
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _window(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 seconds, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from ramp.shell.runtime.settings import Settings

    settings = Settings.from_args(parse_args(argv))  # the one typed settings object
    from ramp.shell.runtime.logs import configure

    configure(settings.log_format, settings.verbose)
    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig
    from ramp.shell.runtime.run import run

    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        logging.getLogger("ramp").error("ramp-operator stopped: %s", exc)  # e.g. port in use
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
