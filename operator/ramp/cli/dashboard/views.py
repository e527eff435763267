"""What the dashboard shows: pure functions from API objects (dicts) to JSON-able data and HTML.

Nothing here talks to the API server or reads the clock, so every view is unit-tested on
plain dicts. The server (:mod:`ramp.cli.dashboard.server`) feeds them what the watches saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ramp.api.labels import REVISION_LABEL, ROLE_LABEL
from ramp.api.verbs import NAMES
from ramp.cli.facts import images, parse_steps, step_label, step_position
from ramp.core.config_tracking import describe_config

Obj = Mapping[str, Any]

VERBS = NAMES
"""The buttons of the detail page, in order (the same requests as ``kubectl ramp VERB``)."""

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARISON = re.compile(rf"^\s*result\s*(<=|<|>=|>|==)\s*({_NUMBER})\s*$")


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def strategy(obj: Obj) -> str:
    """``canary``, ``blueGreen`` or ``-``."""
    strat = (obj.get("spec") or {}).get("strategy") or {}
    return next((k for k in ("canary", "blueGreen") if k in strat), "-")


def summary(obj: Obj) -> dict[str, Any]:
    """One row of the list: what ``kubectl ramp get`` shows, as data."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, _status(obj)
    weights = status.get("weights") or {}
    steps = parse_steps(obj)
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "phase": status.get("phase") or "Unknown",
        "strategy": strategy(obj),
        "step": step_position(status, len(steps)),
        "desiredWeight": weights.get("desired", 0),
        "actualWeight": weights.get("actual", 0),
        "ready": f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 1)}",
        "stable": status.get("stableRevision") or "-",
        "canary": status.get("canaryRevision") or "-",
        "message": status.get("message") or "",
        "routes": [
            {
                "name": r.get("name", ""),
                "desired": r.get("desired"),
                "acknowledged": r.get("acknowledged"),
                "message": r.get("message") or "",
            }
            for r in status.get("routes") or []
        ],
    }


def summaries(objs: Iterable[Obj]) -> list[dict[str, Any]]:
    rows = [summary(o) for o in objs]
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


def split_sample(obj: Obj, at: float) -> dict[str, Any] | None:
    """A point of the replica split over time (None without status)."""
    status = _status(obj)
    if not status:
        return None
    weights = status.get("weights") or {}
    return {
        "t": at,
        "canaryReady": status.get("canaryReadyReplicas") or 0,
        "stableReady": status.get("stableReadyReplicas") or 0,
        "desired": weights.get("desired", 0),
        "actual": weights.get("actual", 0),
    }


# -- thresholds ---------------------------------------------------------------------------


def thresholds(condition: str | None) -> list[dict[str, Any]]:
    """The numeric thresholds of a CEL condition over ``result``, for a plot.

    Conjunctions and disjunctions of simple comparisons are split; anything else gives no
    line (the condition is still shown as text).

    >>> thresholds("result < 0.01")
    [{'op': '<', 'value': 0.01}]
    >>> thresholds("result >= 0.5 && result <= 2")
    [{'op': '>=', 'value': 0.5}, {'op': '<=', 'value': 2.0}]
    >>> thresholds("size(result) > 0")
    []
    """
    if not condition:
        return []
    found = []
    for part in re.split(r"&&|\|\|", condition):
        match = _COMPARISON.match(part.strip().strip("()"))
        if match:
            found.append({"op": match.group(1), "value": float(match.group(2))})
    return found


def _metric_info(metric: Obj) -> dict[str, Any]:
    compare = metric.get("compare")
    info: dict[str, Any] = {
        "name": metric.get("name", ""),
        "successCondition": metric.get("successCondition"),
        "failureCondition": metric.get("failureCondition"),
        "success": thresholds(metric.get("successCondition")),
        "failure": thresholds(metric.get("failureCondition")),
    }
    if compare:
        info["compare"] = {
            "maxIncrease": compare.get("maxIncrease"),
            "minCount": compare.get("minCount"),
        }
    return info


def metric_specs(rollout: Obj, templates: Sequence[Obj]) -> dict[str, dict[str, Any]]:
    """Every metric the Rollout's analyses use, by name, with its conditions and thresholds
    (inline metrics and those of the AnalysisTemplates it refers to)."""
    by_name = {str((t.get("metadata") or {}).get("name")): t for t in templates}
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    analyses = [s.get("analysis") for s in canary.get("steps") or [] if s.get("analysis")]
    if canary.get("analysis"):
        analyses.append(canary["analysis"])
    specs: dict[str, dict[str, Any]] = {}
    for analysis in analyses:
        metrics = list(analysis.get("metrics") or [])
        for ref in analysis.get("templates") or []:
            template = by_name.get(str(ref.get("templateName")))
            if template:
                metrics += (template.get("spec") or {}).get("metrics") or []
        for metric in metrics:
            specs.setdefault(str(metric.get("name")), _metric_info(metric))
    return specs


def measurement_series(
    measurements: Iterable[Obj], specs: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Per metric: its measurements in time order with the thresholds to draw."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for m in measurements:
        value = m.get("value")
        try:
            number = float(value) if value is not None else None
        except (TypeError, ValueError):
            number = None
        if number is not None and number != number:  # NaN: no point, the verdict says why
            number = None
        grouped.setdefault(str(m.get("metric")), []).append(
            {
                "time": m.get("time"),
                "value": number,
                "raw": value,
                "verdict": m.get("verdict"),
                "message": m.get("message") or "",
                "revision": m.get("revision"),
            }
        )
    series = []
    for name, points in grouped.items():
        points.sort(key=lambda p: str(p["time"]))
        spec = specs.get(name) or {"name": name, "success": [], "failure": []}
        series.append({**spec, "name": name, "points": points})
    return sorted(series, key=lambda s: s["name"])


def merge_measurements(seen: dict[str, Any], measurements: Iterable[Obj]) -> None:
    """Keep every measurement seen (status holds only the latest), keyed by metric and time."""
    for m in measurements:
        seen.setdefault(f"{m.get('metric')}@{m.get('time')}@{m.get('revision')}", m)


# -- the detail view ----------------------------------------------------------------------


def revisions(rollout: Obj, deployments: Sequence[Obj], history: Sequence[Obj]) -> list[Obj]:
    """The revision history: child Deployments and ControllerRevisions, newest first."""
    status = _status(rollout)
    rows: dict[str, dict[str, Any]] = {}
    for rev in history:
        labels = (rev.get("metadata") or {}).get("labels") or {}
        name = labels.get(REVISION_LABEL) or str((rev.get("metadata") or {}).get("name"))
        rows[name] = {
            "revision": name,
            "created": (rev.get("metadata") or {}).get("creationTimestamp"),
            "images": images(((rev.get("data") or {}).get("template")) or rev.get("data")),
            "config": describe_config(((rev.get("data") or {}).get("template")) or rev.get("data")),
            "replicas": None,
            "ready": None,
        }
    for d in deployments:
        meta = d.get("metadata") or {}
        rev = (meta.get("labels") or {}).get(REVISION_LABEL, "")
        row = rows.setdefault(rev, {"revision": rev})
        row.update(
            {
                "created": row.get("created") or meta.get("creationTimestamp"),
                "images": images((d.get("spec") or {}).get("template")),
                "config": describe_config((d.get("spec") or {}).get("template")),
                "replicas": (d.get("spec") or {}).get("replicas", 0),
                "ready": (d.get("status") or {}).get("readyReplicas") or 0,
                "deployment": meta.get("name"),
                "roleLabel": (meta.get("labels") or {}).get(ROLE_LABEL),
            }
        )
    for row in rows.values():
        rev = row["revision"]
        row["role"] = (
            "stable"
            if rev == status.get("stableRevision")
            else "canary"
            if rev == status.get("canaryRevision")
            else "aborted"
            if rev == status.get("abortedRevision")
            else "old"
        )
    return sorted(rows.values(), key=lambda r: str(r.get("created") or ""), reverse=True)


def events_view(events: Iterable[Obj], limit: int = 50) -> list[dict[str, Any]]:
    rows = [
        {
            "time": e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp"),
            "type": e.get("type"),
            "reason": e.get("reason"),
            "message": e.get("message"),
        }
        for e in events
    ]
    rows.sort(key=lambda r: str(r["time"] or ""), reverse=True)
    return rows[:limit]


def detail(
    rollout: Obj,
    deployments: Sequence[Obj],
    events: Iterable[Obj],
    history: Sequence[Obj],
    templates: Sequence[Obj],
    measurements: Iterable[Obj],
    split: Sequence[Obj],
) -> dict[str, Any]:
    """Everything the detail page shows about one Rollout."""
    status = _status(rollout)
    steps = parse_steps(rollout)
    index = status.get("currentStepIndex")
    in_progress = bool(status.get("canaryRevision"))
    step_rows = [
        {
            "index": i,
            "label": step_label(s),
            "state": (
                "done"
                if in_progress and index is not None and i < index
                else "current"
                if in_progress and i == index
                else "pending"
            ),
        }
        for i, s in enumerate(steps)
    ]
    return {
        "summary": summary(rollout),
        "paused": bool((rollout.get("spec") or {}).get("paused")),
        "steps": step_rows,
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
            for c in status.get("conditions") or []
        ],
        "events": events_view(events),
        "revisions": revisions(rollout, deployments, history),
        "metrics": measurement_series(measurements, metric_specs(rollout, templates)),
        "split": list(split),
        "abort": {
            "revision": status.get("abortedRevision"),
            "reason": status.get("abortReason"),
            "message": status.get("abortMessage"),
        },
        "verbs": list(VERBS),
    }
