"""The ``web`` check: an HTTP(S) request whose JSON answer the metric's conditions judge.

Verdicts (:func:`judge_answer`, pure):

==========================================  ============================================
what happened                               verdict
==========================================  ============================================
refused (not on the allow-list), timeout,   Error (says nothing about the canary; counts
unreachable, TLS failure, non-2xx, not      toward ``consecutiveErrorLimit``)
JSON, ``jsonPath`` missing or not a number
the value at ``jsonPath`` is ``null``       Inconclusive (no data)
a number / bool / list of numbers           the CEL conditions, as for Prometheus
                                            (:func:`ramp.analysis.cel.judge`)
==========================================  ============================================

A boolean is 1.0 (true) or 0.0 (false); a numeric string (``"0.01"``) is its number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ramp.analysis.cel import Judgement, Result, format_result, judge
from ramp.analysis.checkhttp import (
    CheckError,
    CheckHttp,
    check_endpoint,
    render_text,
    render_url,
)
from ramp.analysis.promql import QueryContext, QueryTemplateError
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import WebSource

SecretReader = Callable[[str, str, str], str]
"""``read(namespace, secret, key)``: the decoded value; raises when it cannot."""

_STEP = re.compile(r"\.?([A-Za-z0-9_-]+)|\[(\d+)\]")


class PathError(ValueError):
    """``jsonPath`` does not lead to a value in the answer."""


def extract(doc: Any, path: str) -> Any:
    """The value of ``doc`` at ``path`` (``a.b[0].c``, an optional leading ``$``).

    >>> extract({"data": {"rates": [0.1, 0.2]}}, "$.data.rates[1]")
    0.2
    >>> extract({"ok": True}, "")
    {'ok': True}
    """
    rest = path.removeprefix("$")
    value = doc
    at = "$"
    pos = 0
    while pos < len(rest):
        match = _STEP.match(rest, pos)
        if match is None:
            raise PathError(f"jsonPath {path!r} is malformed at {rest[pos:]!r}")
        key, index = match.groups()
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise PathError(f"the answer has no {at}.{key}")
            value = value[key]
            at += f".{key}"
        else:
            i = int(index)
            if not isinstance(value, list) or i >= len(value):
                raise PathError(f"the answer has no {at}[{i}]")
            value = value[i]
            at += f"[{i}]"
        pos = match.end()
    return value


def to_result(value: Any) -> Result | None:
    """``value`` as a condition's ``result``; None for ``null`` (no data); PathError
    when it is not a number, a boolean, a numeric string or a list of those."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise PathError("the value is a string, not a number") from None
    if isinstance(value, list):
        out: list[float] = []
        for item in value:
            single = to_result(item)
            if not isinstance(single, float):
                raise PathError("the list holds something other than numbers")
            out.append(single)
        return out
    raise PathError(f"the value is a {type(value).__name__}, not a number")


def judge_answer(
    status: int,
    body: bytes,
    json_path: str,
    success_condition: str | None,
    failure_condition: str | None,
) -> tuple[Judgement, str | None]:
    """The verdict on one answer, and the value for the record (None without one)."""
    if not 200 <= status < 300:
        reason = "redirects are not followed" if 300 <= status < 400 else "not a 2xx answer"
        return Judgement(Verdict.ERROR, f"answered HTTP {status}: {reason}"), None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Judgement(Verdict.ERROR, f"answered HTTP {status} but not with JSON"), None
    try:
        result = to_result(extract(doc, json_path))
    except PathError as error:
        return Judgement(Verdict.ERROR, f"{error} (jsonPath {json_path or '$'!r})"), None
    except RecursionError:
        return Judgement(Verdict.ERROR, "the answer is nested too deeply"), None
    if result is None:
        return Judgement(Verdict.INCONCLUSIVE, f"{json_path or '$'} is null (no data)"), None
    if isinstance(result, float) and math.isinf(result):
        return Judgement(Verdict.ERROR, "the value is infinite"), None
    return judge(result, success_condition, failure_condition), format_result(result)


def check_web(source: WebSource, context: QueryContext, config: Any) -> list[str]:
    """Problems that make a web metric unusable, naming the field (empty when fine)."""
    problems: list[str] = []
    try:
        url = render_url(source.url, context)
    except QueryTemplateError as error:
        return [f"web.url: {error}"]
    refusal = check_endpoint(config, url, context.namespace)
    if isinstance(refusal, str):
        problems.append(f"web.url: {refusal}")
    texts = [("web.body", source.body or "")]
    texts += [(f"web.headers[{i}].value", h.value or "") for i, h in enumerate(source.headers)]
    for where, text in texts:
        try:
            render_text(text, context)
        except QueryTemplateError as error:
            problems.append(f"{where}: {error}")
    return problems


async def measure_web(
    http: CheckHttp,
    metric: Metric,
    source: WebSource,
    context: QueryContext,
    read_secret: SecretReader | None,
) -> tuple[str | None, str | None, Verdict, str]:
    """One request and its verdict: (URL sent without its query, value, verdict, why)."""
    try:
        url = render_url(source.url, context)
        body = render_text(source.body, context).encode() if source.body is not None else None
    except QueryTemplateError as error:
        return None, None, Verdict.ERROR, f"web template: {error}"
    endpoint = check_endpoint(http.config, url, context.namespace)
    if isinstance(endpoint, str):
        return None, None, Verdict.ERROR, endpoint
    headers = {"Accept": "application/json", "User-Agent": "ramp-check"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    for i, header in enumerate(source.headers):
        if header.value is not None:
            try:
                headers[header.name] = render_text(header.value, context)
            except QueryTemplateError as error:
                return None, None, Verdict.ERROR, f"web.headers[{i}]: {error}"
            continue
        assert header.value_from is not None
        ref = header.value_from.secret_key_ref
        if read_secret is None:
            return None, None, Verdict.ERROR, f"web.headers[{i}]: no Secret reader"
        try:
            headers[header.name] = read_secret(context.namespace, ref.name, ref.key)
        except Exception as error:  # says which Secret and key, never a value
            reason = getattr(error, "reason", None) or type(error).__name__
            return (
                None,
                None,
                Verdict.ERROR,
                f"web.headers[{i}]: cannot read Secret {ref.name} key {ref.key} ({reason})",
            )
    shown = url.split("?", 1)[0]
    timeout = metric.timeout_seconds
    try:
        answer = await http.request(endpoint, source.method, url, headers, body, timeout)
    except CheckError as error:
        return shown, None, Verdict.ERROR, error.message
    judgement, value = judge_answer(
        answer.status, answer.body, source.json_path, metric.success_condition,
        metric.failure_condition,
    )  # fmt: skip
    return shown, value, judgement.verdict, judgement.message
