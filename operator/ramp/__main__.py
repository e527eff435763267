"""``python -m ramp`` / ``ramp-operator``: run the operator against the current kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from ramp import __version__


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
        help="Secret whose 'token' key is the bearer token for Prometheus",
    )
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log format")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"ramp-operator {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    from ramp.runtime import run

    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
