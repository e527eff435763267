"""The ``webhook`` check: a signed CloudEvent POSTed to a hook; its JSON answer is the verdict.

The request (structured CloudEvents 1.0, ``application/cloudevents+json``)::

    POST <url>
    Idempotency-Key: <id>              # the event's id: same Rollout, revision, analysis,
                                       # metric and attempt -> same key (a retry after a
                                       # restart is recognisably the same request)
    X-Ramp-Timestamp: <unix seconds>
    X-Ramp-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>

    {"specversion": "1.0", "type": "dev.ramp.check", "source": "/namespaces/NS/rollouts/R",
     "id": "<id>", "time": "...", "subject": "<metric>", "datacontenttype": "application/json",
     "data": {"rollout", "namespace", "canaryRevision", "stableRevision", "analysis",
              "metric", "attempt", ...the metric's data}}

Verdicts (:func:`judge_hook`, pure): a 2xx answer with ``{"verdict": "Pass"|"Fail"|
"Inconclusive", "message": "..."}`` gives that verdict; **202 (accepted, later) is
Inconclusive**: it is not a verdict and never a pass; a timeout, a transport error, any
other status (a receiver refusing the signature answers 401/403) or an answer without a
verdict is an Error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from ramp.analysis.cel import Judgement
from ramp.analysis.checkhttp import CheckError, CheckHttp, check_endpoint, render_text, render_url
from ramp.analysis.promql import QueryContext, QueryTemplateError
from ramp.analysis.web import SecretReader
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import WebhookSource

EVENT_TYPE = "dev.ramp.check"
SIGNATURE_HEADER = "X-Ramp-Signature"
TIMESTAMP_HEADER = "X-Ramp-Timestamp"
MAX_HOOK_MESSAGE = 300


def idempotency_key(uid: str, revision: str, analysis: str, metric: str, attempt: int) -> str:
    """The same for every send of the same measurement (a hash: no name leaks).

    >>> len(idempotency_key("u", "r", "step-1", "m", 1))
    32
    """
    raw = "\x00".join((uid, revision, analysis, metric, str(attempt)))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Ramp-Signature`` value: ``sha256=`` and the hex HMAC of ``timestamp.body``.

    >>> sign(b"k", "1", b"{}")[:15]
    'sha256=3dd49b25'
    """
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(key: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant time)."""
    return hmac.compare_digest(sign(key, timestamp, body), signature)


def cloudevent(
    event_id: str, time: str, context: QueryContext, analysis: str, metric: str, attempt: int,
    extra: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The event to send (structured mode)."""
    data: dict[str, Any] = dict(extra)
    data.update(
        rollout=context.rollout,
        namespace=context.namespace,
        canaryRevision=context.canary_revision,
        stableRevision=context.stable_revision,
        analysis=analysis,
        metric=metric,
        attempt=attempt,
    )
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": f"/namespaces/{context.namespace}/rollouts/{context.rollout}",
        "id": event_id,
        "time": time,
        "subject": metric,
        "datacontenttype": "application/json",
        "data": data,
    }


_VERDICTS = {"pass": Verdict.PASS, "fail": Verdict.FAIL, "inconclusive": Verdict.INCONCLUSIVE}


def judge_hook(status: int, body: bytes) -> Judgement:
    """The verdict of the hook's answer (see the module's table)."""
    if status == 202:
        return Judgement(
            Verdict.INCONCLUSIVE, "the hook answered 202 (accepted, later): not a verdict"
        )
    if not 200 <= status < 300:
        hint = " (did it refuse the signature?)" if status in (401, 403) else ""
        return Judgement(Verdict.ERROR, f"the hook answered HTTP {status}{hint}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Judgement(Verdict.ERROR, f"the hook answered HTTP {status} without JSON")
    verdict = doc.get("verdict") if isinstance(doc, dict) else None
    found = _VERDICTS.get(verdict.lower()) if isinstance(verdict, str) else None
    if found is None:
        return Judgement(
            Verdict.ERROR,
            'the hook\'s answer has no "verdict" of Pass, Fail or Inconclusive',
        )
    said = doc.get("message")
    text = " ".join(said.split())[:MAX_HOOK_MESSAGE] if isinstance(said, str) else ""
    return Judgement(found, f"the hook says {found.value}" + (f": {text}" if text else ""))


def check_webhook(source: WebhookSource, context: QueryContext, config: Any) -> list[str]:
    """Problems that make a webhook metric unusable, naming the field."""
    try:
        url = render_url(source.url, context)
        for value in (source.data or {}).values():
            render_text(value, context)
    except QueryTemplateError as error:
        return [f"webhook: {error}"]
    refusal = check_endpoint(config, url, context.namespace)
    return [f"webhook.url: {refusal}"] if isinstance(refusal, str) else []


async def measure_webhook(
    http: CheckHttp,
    metric: Metric,
    source: WebhookSource,
    context: QueryContext,
    read_secret: SecretReader | None,
    *,
    analysis: str,
    uid: str,
    attempt: int,
    now: str,
    timestamp: str,
) -> tuple[str | None, str | None, Verdict, str]:
    """Send the event once and judge the answer: (URL, event id, verdict, why)."""
    try:
        url = render_url(source.url, context)
        extra = {k: render_text(v, context) for k, v in (source.data or {}).items()}
    except QueryTemplateError as error:
        return None, None, Verdict.ERROR, f"webhook template: {error}"
    endpoint = check_endpoint(http.config, url, context.namespace)
    if isinstance(endpoint, str):
        return None, None, Verdict.ERROR, endpoint
    ref = source.signing_secret
    if read_secret is None:
        return None, None, Verdict.ERROR, "webhook.signingSecret: no Secret reader"
    try:
        key = read_secret(context.namespace, ref.name, ref.key).encode()
    except Exception as error:  # names the Secret and key, never a value
        reason = getattr(error, "reason", None) or type(error).__name__
        return (
            None,
            None,
            Verdict.ERROR,
            f"webhook.signingSecret: cannot read Secret {ref.name} key {ref.key} ({reason})",
        )
    revision = context.canary_revision or ""
    event_id = idempotency_key(uid, revision, analysis, metric.name, attempt)
    event = cloudevent(event_id, now, context, analysis, metric.name, attempt, extra)
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/cloudevents+json",
        "Accept": "application/json",
        "User-Agent": "ramp-check",
        "Idempotency-Key": event_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(key, timestamp, body),
    }
    shown = url.split("?", 1)[0]
    try:
        answer = await http.request(endpoint, "POST", url, headers, body, metric.timeout_seconds)
    except CheckError as error:
        return shown, event_id, Verdict.ERROR, error.message
    judgement = judge_hook(answer.status, answer.body)
    return shown, event_id, judgement.verdict, judgement.message
