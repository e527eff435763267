"""Wire the operator together: API client, controller, kopf."""

from __future__ import annotations

import argparse
import logging

import kopf

import ramp.handlers as handlers
from ramp.controller import Controller
from ramp.kube import Kube, load_client

log = logging.getLogger(__name__)


async def run(args: argparse.Namespace) -> None:
    """Run until stopped (SIGINT/SIGTERM)."""
    kube = Kube(load_client(args.kubeconfig))
    handlers.State.controller = Controller(kube, children=handlers.children_of)
    namespaces: list[str] = list(args.namespace)
    log.info(
        "ramp-operator starting, watching %s",
        ", ".join(namespaces) if namespaces else "all namespaces",
    )
    await kopf.operator(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
    )
