"""Recover a revision's pod template, exactly, from its child Deployment (for ``undo``).

The operator copies ``spec.template`` into the revision's Deployment with one more pod
label, ``ramp.dev/revision``, whose value is the hash of the template
(:func:`ramp.core.plan.revision_hash`). The API server then fills in defaults
(``restartPolicy: Always``, ``imagePullPolicy``, ``terminationMessagePath``, ...). Writing
that defaulted template back into the Rollout would hash differently: a new revision with
all its steps instead of a return to the old one.

So :func:`original_template` removes the label, then the fields the API server defaults
(only where they hold the default value), and checks each candidate against the revision
hash: the result is the template the user wrote, proven by its hash, or None.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ramp.api.labels import REVISION_LABEL, TEMPLATE_ANNOTATION, revision_hash

Path = tuple[str | int, ...]

POD_DEFAULTS: dict[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "securityContext": {},
    "schedulerName": "default-scheduler",
}
CONTAINER_DEFAULTS: dict[str, Any] = {
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
PROBE_DEFAULTS: dict[str, Any] = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
MAX_SUBSETS = 1 << 16
"""Beyond this many candidates (16 defaulted fields) only the all-removed one is tried."""


def _defaulted_paths(template: Mapping[str, Any]) -> Iterator[Path]:
    """Paths of the fields that hold an API-server default value."""
    spec = template.get("spec") or {}
    for key, value in POD_DEFAULTS.items():
        if spec.get(key) == value:
            yield ("spec", key)
    if (template.get("metadata") or {}).get("creationTimestamp", 0) is None:
        yield ("metadata", "creationTimestamp")
    for kind in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(kind) or []):
            base: Path = ("spec", kind, i)
            for key, value in CONTAINER_DEFAULTS.items():
                if container.get(key) == value:
                    yield (*base, key)
            image = str(container.get("image", ""))
            pull = "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
            if container.get("imagePullPolicy") == pull:
                yield (*base, "imagePullPolicy")
            for j, port in enumerate(container.get("ports") or []):
                if port.get("protocol") == "TCP":
                    yield (*base, "ports", j, "protocol")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                found = container.get(probe)
                if not isinstance(found, dict):
                    continue
                for key, value in PROBE_DEFAULTS.items():
                    if found.get(key) == value:
                        yield (*base, probe, key)
                if (found.get("httpGet") or {}).get("scheme") == "HTTP":
                    yield (*base, probe, "httpGet", "scheme")


def _without(template: Mapping[str, Any], paths: tuple[Path, ...]) -> dict[str, Any]:
    result = copy.deepcopy(dict(template))
    for path in paths:
        node: Any = result
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return result


def strip_revision_label(template: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template without the operator's ``ramp.dev/revision`` label."""
    result = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(REVISION_LABEL, None)
    return result


def recorded_template(deployment: Mapping[str, Any], revision: str) -> dict[str, Any] | None:
    """The template the operator recorded on the child (annotation ``ramp.dev/template``),
    when it is there and its hash is ``revision``; None otherwise."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(TEMPLATE_ANNOTATION)
    if not text:
        return None
    try:
        template = json.loads(text)
    except ValueError:
        return None
    if not isinstance(template, dict) or revision_hash(template) != revision:
        return None
    return template


def original_template(
    deployment_template: Mapping[str, Any], revision: str
) -> dict[str, Any] | None:
    """The template whose hash is ``revision``, recovered from a child's pod template.

    >>> t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c",
    ...      "image": "x:1"}]}}
    >>> rev = revision_hash(t)
    >>> stored = {"metadata": {"labels": {"app": "a", "ramp.dev/revision": rev}},
    ...           "spec": {"containers": [{"name": "c", "image": "x:1", "resources": {},
    ...           "imagePullPolicy": "IfNotPresent"}], "restartPolicy": "Always"}}
    >>> original_template(stored, rev) == t
    True
    """
    base = strip_revision_label(deployment_template)
    paths = tuple(_defaulted_paths(base))
    # Most likely first: every default removed (the user wrote none of them), then fewer.
    if len(paths) > 16:
        candidates: Iterator[tuple[Path, ...]] = iter([paths, ()])
    else:
        candidates = itertools.chain.from_iterable(
            itertools.combinations(paths, n) for n in range(len(paths), -1, -1)
        )
    for removed in candidates:
        candidate = _without(base, removed)
        if revision_hash(candidate) == revision:
            return candidate
    return None
