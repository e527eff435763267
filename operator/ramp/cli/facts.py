"""Plain facts of a Rollout as short text: its steps, weights, images, ages, Events in order,
a one-line progress and its outcome. Pure (the clock is a parameter); shared by the terminal
views (:mod:`ramp.cli.render`), the verbs and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ramp.api.rollout import Step
from ramp.cli.safe import visible_obj
from ramp.core.plan import describe_step

Obj = Mapping[str, Any]

MAX_EVENTS = 8


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(text: Any, now: datetime | None) -> str:
    """A Kubernetes-style age (``5s``, ``3m``, ``2h``, ``4d``) of a timestamp at ``now``.

    >>> age("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, 3, 10, tzinfo=UTC))
    '3m10s'
    >>> age(None, None)
    '-'
    """
    moment = parse_time(text)
    if moment is None or now is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 86400}d"


def parse_steps(rollout: Obj) -> list[Step]:
    """The Rollout's canary steps as models (an empty list when they do not parse)."""
    raw = (((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps")
    try:
        return [Step.model_validate(s) for s in raw or []]
    except ValidationError:
        return []


def step_label(step: Step) -> str:
    """:func:`ramp.core.plan.describe_step`, with the names of an analysis step's metrics."""
    if step.analysis is None:
        return describe_step(step)
    names = [t.template_name for t in step.analysis.templates]
    names += [m.name for m in step.analysis.metrics]
    return f"analysis {', '.join(names)}" if names else "analysis"


def step_position(status: Obj, total: int) -> str:
    """``i/N`` for the step a rollout is at (1-based), ``-`` when none is in progress."""
    index = status.get("currentStepIndex")
    if index is None or not status.get("canaryRevision"):
        return "-"
    return f"{min(int(index) + 1, total)}/{total}" if total else "0/0"


def weights_text(status: Obj) -> str:
    """``desired/actual`` canary weight in percent."""
    weights = status.get("weights") or {}
    return f"{weights.get('desired', 0)}/{weights.get('actual', 0)}"


def images(template: Obj | None) -> str:
    """The images of a pod template, ``name=image`` when there are several containers."""
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    if len(containers) == 1:
        return str(containers[0].get("image", "?"))
    return ", ".join(f"{c.get('name')}={c.get('image')}" for c in containers)


def event_time(event: Obj) -> str:
    """The latest timestamp an Event carries (series, lastTimestamp, eventTime, ...)."""
    series = event.get("series") or {}
    for key in ("lastObservedTime",):
        if series.get(key):
            return str(series[key])
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if event.get(key):
            return str(event[key])
    return str((event.get("metadata") or {}).get("creationTimestamp") or "")


def recent_events(events: Sequence[Obj], limit: int = MAX_EVENTS) -> list[Obj]:
    """The ``limit`` latest Events, oldest first."""

    def key(event: Obj) -> tuple[datetime, int, str]:
        meta = event.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        return (
            parse_time(event_time(event)) or datetime.min.replace(tzinfo=UTC),
            int(version) if version.isdigit() else 0,  # etcd's order within one second
            str(meta.get("name")),
        )

    return sorted(events, key=key)[-limit:]


def progress_line(rollout: Obj) -> str:
    """One line about where a rollout stands: phase, step, weights, ready pods, message."""
    rollout = visible_obj(rollout)
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    steps = parse_steps(rollout)
    parts = [str(status.get("phase") or "Unknown")]
    position = step_position(status, len(steps))
    if position != "-" and not ((spec.get("strategy") or {}).get("blueGreen")):
        parts.append(f"step {position}")
        parts.append(f"weight {weights_text(status)}")
        for route in status.get("routes") or []:  # desired/acknowledged by the gateway
            acked = route.get("acknowledged")
            parts.append(f"route {route.get('name')} {route.get('desired', 0)}/{acked}")
    parts.append(f"ready {status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}")
    active = (status.get("blueGreen") or {}).get("activeRevision")
    if active:
        parts.append(f"active {active}")
    message = status.get("message")
    return " ".join(parts) + (f": {message}" if message else "")


def outcome(rollout: Obj) -> str | None:
    """``Healthy``, ``Aborted`` or ``Degraded`` once the operator has seen the latest spec
    and the rollout has settled there; None while it is still on its way."""
    meta, status = rollout.get("metadata") or {}, rollout.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return None
    phase = status.get("phase")
    if phase == "Healthy" and not status.get("canaryRevision"):
        return "Healthy"
    if phase in ("Aborted", "Degraded"):
        return str(phase)
    return None
