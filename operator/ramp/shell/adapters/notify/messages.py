"""What a notification says: pure functions from a Rollout's Event to the payload of a sink.

The operator's Events are the source (the same words a user sees in ``kubectl describe``):
:func:`trigger_of` maps an Event reason to a trigger, :func:`notification` gathers the
fields, :func:`wants` applies a sink's triggers and the Rollout's annotations, and
:func:`payload` renders the body for a webhook, a CloudEvents 1.0 receiver (structured
mode) or a Slack-compatible incoming webhook.

Per-Rollout choice, by annotation:

* ``ramp.dev/notify``: absent — the sinks that are not ``optIn``; ``none``/``off``/``false``
  — none; ``all``/``true`` — every sink; ``a,b`` — only the sinks named. A sink's
  ``namespaces`` bound every choice: an ``optIn`` sink has that list always (the admin's
  configuration requires it), so ``all`` cannot reach another team's channel.

Slack text is escaped (``&``, ``<``, ``>``): a Rollout's message cannot mention
``<!channel>`` or disguise a link (``<https://evil|docs>``).
* ``ramp.dev/notify-triggers``: ``aborted,completed`` — only these triggers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ramp import GROUP, PREFIX, VERSION
from ramp.shell.adapters.notify.config import Sink

NOTIFY_ANNOTATION = f"{PREFIX}/notify"
TRIGGERS_ANNOTATION = f"{PREFIX}/notify-triggers"
CLOUDEVENTS_TYPE = "dev.ramp.rollout"
PAUSED_REASON = "RolloutPaused"

REASON_TRIGGER = {
    "RolloutStarted": "started",
    "CanaryReplaced": "started",
    "Retried": "started",
    # Not the "Paused" Event (spec.paused only): a pause of any cause is seen as the phase
    # becoming Paused in the status the operator writes (see Notifier.attach).
    PAUSED_REASON: "paused",
    "Resumed": "resumed",
    "Aborted": "aborted",
    "RolloutCompleted": "completed",
    "RolledBack": "rolledBack",
    "AnalysisPass": "analysis",
    "AnalysisFail": "analysis",
    "AnalysisInconclusive": "analysis",
    "AnalysisError": "analysis",
    "StepCompleted": "step",
}
_ANALYSIS = re.compile(
    r"^(?P<run>\S+) metric (?P<metric>\S+): (?P<verdict>\w+) "
    r"\(value (?P<value>.*?)\): ?(?P<why>.*)$",
    re.S,
)
_OFF = {"none", "off", "false", "no", "0"}
_ALL = {"all", "true", "yes", "on", "*"}


def trigger_of(reason: str) -> str | None:
    return REASON_TRIGGER.get(reason)


def analysis_of(message: str) -> dict[str, Any] | None:
    """The metric, verdict, value and why of an ``Analysis*`` Event's message.

    >>> analysis_of("step-1 metric error-ratio: Fail (value 0.2): result >= 0.05")["value"]
    '0.2'
    """
    match = _ANALYSIS.match(message.strip())
    if not match:
        return None
    return {
        "run": match["run"],
        "metric": match["metric"],
        "verdict": match["verdict"],
        "value": match["value"],
        "why": match["why"],
    }


@dataclass(frozen=True)
class Notification:
    trigger: str
    reason: str
    type: str
    message: str
    namespace: str
    name: str
    uid: str
    time: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def data(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "reason": self.reason,
            "type": self.type,
            "message": self.message,
            "rollout": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
            "time": self.time,
            **self.details,
        }


def notification(
    rollout: Mapping[str, Any],
    reason: str,
    type_: str,
    message: str,
    now: datetime,
    analysis: Mapping[str, Any] | None = None,
) -> Notification | None:
    """The notification for an Event on ``rollout`` (None when no trigger maps to it).

    ``analysis`` is the latest analysis verdict seen for this Rollout: an abort carries it
    (metric, value, why), so the receiver learns which gate saw what.
    """
    trigger = trigger_of(reason)
    if trigger is None:
        return None
    meta = rollout.get("metadata") or {}
    status = rollout.get("status") or {}
    spec = rollout.get("spec") or {}
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    details: dict[str, Any] = {
        "phase": status.get("phase"),
        "stableRevision": status.get("stableRevision"),
        "canaryRevision": status.get("canaryRevision"),
        "step": status.get("currentStepIndex"),
        "steps": len(steps),
        "weights": status.get("weights") or {},
    }
    if trigger == "analysis":
        details["analysis"] = analysis_of(message)
    elif trigger == "aborted" and analysis:
        details["analysis"] = dict(analysis)
    if trigger == "paused":
        conditions = status.get("conditions") or []
        paused: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Paused"), {})
        details["why"] = paused.get("reason")  # PauseStep, SpecPaused, AnalysisInconclusive...
    return Notification(
        trigger=trigger,
        reason=reason,
        type=type_,
        message=message,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        annotations=dict(meta.get("annotations") or {}),
        details=details,
    )


def wants(sink: Sink, note: Notification) -> bool:
    """Whether ``sink`` sends ``note`` (its triggers, namespaces and the annotations)."""
    if note.trigger not in sink.triggers:
        return False
    if sink.namespaces and note.namespace not in sink.namespaces:
        return False
    if sink.opt_in and not sink.namespaces:
        return False  # an opt-in sink names the namespaces that may opt in (config.py)
    choice = (note.annotations.get(NOTIFY_ANNOTATION) or "").strip().lower()
    if choice in _OFF and choice:
        return False
    if choice in _ALL:
        pass
    elif choice:
        if sink.name not in {s.strip() for s in choice.split(",")}:
            return False
    elif sink.opt_in:
        return False
    only = note.annotations.get(TRIGGERS_ANNOTATION)
    if only:
        return note.trigger in {t.strip() for t in only.split(",")}
    return True


_EMOJI = {
    "started": ":arrow_forward:",
    "paused": ":double_vertical_bar:",
    "resumed": ":arrow_forward:",
    "aborted": ":red_circle:",
    "completed": ":white_check_mark:",
    "rolledBack": ":leftwards_arrow_with_hook:",
    "analysis": ":bar_chart:",
    "step": ":arrow_right:",
}


def slack_escape(text: str) -> str:
    """Slack's control characters as entities: ``<!channel>``, ``<@U1>`` and
    ``<url|label>`` in a Rollout's strings are shown, not acted on.

    >>> slack_escape("<!channel> & <https://evil|docs>")
    '&lt;!channel&gt; &amp; &lt;https://evil|docs&gt;'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(sink: Sink, note: Notification) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers for ``sink``."""
    headers = {"Content-Type": "application/json", "User-Agent": "ramp-operator"}
    if sink.token:
        headers["Authorization"] = f"Bearer {sink.token}"
    if sink.type == "cloudevents":
        headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
        body = {
            "specversion": "1.0",
            "id": note.id,
            "source": f"/apis/{GROUP}/{VERSION}/namespaces/{note.namespace}/rollouts/{note.name}",
            "type": f"{CLOUDEVENTS_TYPE}.{note.trigger}",
            "subject": f"{note.namespace}/{note.name}",
            "time": note.time,
            "datacontenttype": "application/json",
            "data": note.data(),
        }
        return body, headers
    if sink.type == "slack":
        text = (
            f"{_EMOJI.get(note.trigger, '')} Rollout "
            f"*{slack_escape(note.namespace)}/{slack_escape(note.name)}* "
            f"{note.trigger}: {slack_escape(note.message)}"
        ).strip()
        return {"text": text}, headers
    return note.data(), headers
