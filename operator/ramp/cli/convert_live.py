"""``kubectl ramp convert deployment/NAME``: a Rollout that adopts a live Deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ramp.api.labels import ROLLOUT_LABEL
from ramp.cli.client import CliError
from ramp.core.workload_model import MANAGED_ANNOTATION, WATCHED_VALUE

RAMP_API = "ramp.dev/v1alpha1"
Obj = dict[str, Any]


class NotConvertible(CliError):
    """A live Deployment that a Rollout must not adopt (Ramp runs it already)."""


def rollout_for_deployment(deployment: Mapping[str, Any]) -> Obj:
    """A Rollout that adopts a live Deployment (``convert deployment/NAME``).

    Refused (:class:`NotConvertible`) for a Deployment Ramp runs already: a revision of
    a Rollout (adopting it would make Ramp fight itself over its own child) or one that a
    Rollout has adopted (its ``replicas`` is Ramp's, often 0, not the app's size)."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    name = meta.get("name")
    owners = [
        o.get("name")
        for o in meta.get("ownerReferences") or []
        if o.get("kind") == "Rollout" and str(o.get("apiVersion", "")).startswith("ramp.dev/")
    ]
    # An adopted Deployment also carries ramp.dev/rollout (WATCHED_VALUE, for the
    # operator's watch): the annotation says by whom, so it is asked first.
    adopter = (meta.get("annotations") or {}).get(MANAGED_ANNOTATION)
    if adopter:
        raise NotConvertible(
            f"deployment/{name} is already adopted by Rollout {adopter} "
            f"(annotation {MANAGED_ANNOTATION})"
        )
    label = (meta.get("labels") or {}).get(ROLLOUT_LABEL)
    owner = owners[0] if owners else (label if label != WATCHED_VALUE else None)
    if owner:
        raise NotConvertible(
            f"deployment/{name} is a revision of Rollout {owner} (Ramp runs it): convert the "
            "Deployment you wrote, not Ramp's child"
        )
    return {
        "apiVersion": RAMP_API,
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": meta.get("namespace")},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "workloadRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
                "scaleDown": "progressively",
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 20},
                        {"pause": {"duration": "1m"}},
                        {"setWeight": 50},
                        {"pause": {}},
                    ]
                }
            },
        },
    }


__all__ = ["NotConvertible", "rollout_for_deployment"]
