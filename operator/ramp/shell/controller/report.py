"""What a reconcile that cannot go on shows on the Rollout: a ``ReconcileError``
condition and Warning Event for one that raised, an ``InvalidSpec`` condition for a
Rollout the models cannot read."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp.core.model import Event
from ramp.shell.adapters.kube import Conflict, Kube
from ramp.shell.controller.apply import api_message

ERROR_CONDITION = "ReconcileError"
"""The condition (and Event reason) of a reconcile that raised."""


def error_message(exc: Exception) -> str:
    """A failed reconcile in words, the same for the same error (an API error without its
    response headers, which differ on every request)."""
    if isinstance(exc, ApiException):
        text = f"{exc.status} {exc.reason}: {api_message(exc) or exc.body or ''}"
    else:
        text = str(exc)
    return f"{type(exc).__name__}: {text}"[:1000]


def report_error(
    kube: Kube,
    now: Callable[[], datetime],
    reported: dict[tuple[str, str], str],
    key: tuple[str, str],
    message: str,
) -> None:
    """A ``ReconcileError`` condition (the next successful status write removes it) and
    a Warning Event (once per distinct error, remembered in ``reported``)."""
    body = kube.get_rollout(*key)
    if body is None:
        return
    status = dict(body.get("status") or {})
    old = [c for c in status.get("conditions") or [] if c.get("type") == ERROR_CONDITION]
    if not old or old[0].get("message") != message:
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != ERROR_CONDITION]
        since = old[0].get("lastTransitionTime") if old else None
        conditions.append(
            {
                "type": ERROR_CONDITION,
                "status": "True",
                "reason": "ReconcileFailed",
                "message": message,
                "lastTransitionTime": since or now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        status["conditions"] = conditions
        with contextlib.suppress(Conflict):  # changed meanwhile: the next reconcile writes
            kube.patch_status(body, status)
    if reported.get(key) != message:
        reported[key] = message
        kube.emit(
            body,
            Event(
                "Warning",
                ERROR_CONDITION,
                f"reconcile failed (retried with backoff): {message}"[:1000],
            ),
        )


def report_unparsable(kube: Kube, now: datetime, body: dict[str, Any], problem: str) -> None:
    """A Rollout the models cannot read: say so in a condition, touch nothing else."""
    status = dict(body.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "InvalidSpec"]
    conditions.append(
        {
            "type": "InvalidSpec",
            "status": "True",
            "reason": "InvalidSpec",
            "message": problem,
            "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    status.update(
        conditions=conditions,
        phase="Degraded",
        message=f"invalid spec: {problem}; the workload keeps running as it was",
    )
    with contextlib.suppress(Conflict):
        kube.patch_status(body, status)


__all__ = ["ERROR_CONDITION", "error_message", "report_error", "report_unparsable"]
