"""``kubectl ramp convert``: Argo's ``job`` and ``web`` metric providers as Ramp checks.

* ``job``: the Job's pod template and ``activeDeadlineSeconds`` (required in Ramp: 600
  when Argo's has none, said in a warning); ``backoffLimit`` is dropped with a warning
  (Ramp never retries a check Job behind the metric's back: use ``count`` and the limits).
* ``web``: ``url``, ``method``, ``headers`` (``key``/``value`` → ``name``/``value``),
  ``body`` / ``jsonBody``, ``timeoutSeconds``, ``jsonPath`` (``{$.data.ok}`` →
  ``data.ok``); ``insecure`` and ``authentication`` are warned on (Ramp always verifies
  certificates; credentials come from Secrets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Warn = Callable[[str, str], None]
"""``warn(field under provider, message)``."""

DEFAULT_DEADLINE = 600
_SECRETISH = re.compile(r"auth|token|key|cookie|secret|password", re.I)


def convert_check(provider: Obj, warn: Warn) -> Obj | None:
    """The Ramp source fields for Argo's ``job`` or ``web`` provider; None for others."""
    if isinstance(provider.get("job"), dict):
        return {"job": _job(provider["job"], warn)}
    if isinstance(provider.get("web"), dict):
        return {"web": _web(provider["web"], warn)}
    return None


def _job(job: Obj, warn: Warn) -> Obj:
    spec = job.get("spec") or {}
    template = spec.get("template") or {}
    out: Obj = {"template": {k: v for k, v in template.items() if k in ("metadata", "spec")}}
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline > 0:
        out["activeDeadlineSeconds"] = min(deadline, 3600)
        if deadline > 3600:
            warn("job.spec.activeDeadlineSeconds", f"{deadline}: Ramp's ceiling is 3600")
    else:
        out["activeDeadlineSeconds"] = DEFAULT_DEADLINE
        warn(
            "job.spec.activeDeadlineSeconds",
            f"absent: Ramp requires a deadline, set to {DEFAULT_DEADLINE}s",
        )
    pod_spec = out["template"].get("spec") or {}
    if pod_spec.get("restartPolicy") not in (None, "Never"):
        warn("job.spec.template.spec.restartPolicy", "Ramp runs check Jobs with Never")
        out["template"]["spec"] = {**pod_spec, "restartPolicy": "Never"}
    for key in sorted(set(spec) - {"template", "activeDeadlineSeconds"}):
        reason = (
            "Ramp never retries a check Job (use the metric's count and limits)"
            if key == "backoffLimit"
            else "no Ramp equivalent"
        )
        warn(f"job.spec.{key}", f"{reason}: dropped")
    if job.get("metadata"):
        warn("job.metadata", "Ramp names and labels the Job itself: dropped")
    return out


def _web(web: Obj, warn: Warn) -> Obj:
    out: Obj = {"url": str(web.get("url", ""))}
    if web.get("method"):
        out["method"] = str(web["method"]).upper()
    headers = [
        {"name": str(h.get("key", "")), "value": str(h.get("value", ""))}
        for h in web.get("headers") or []
        if isinstance(h, dict)
    ]
    if headers:
        out["headers"] = headers
    secret = [h["name"] for h in headers if _SECRETISH.search(h["name"])]
    if secret:
        warn("web.headers", f"{', '.join(secret)}: move the value to a Secret (valueFrom)")
    if "jsonBody" in web:
        out["body"] = json.dumps(web["jsonBody"], separators=(",", ":"))
    elif "body" in web:
        out["body"] = str(web["body"])
    if "timeoutSeconds" in web:
        out["timeout"] = f"{int(web['timeoutSeconds'])}s"
    path = str(web.get("jsonPath") or "").strip()
    path = re.sub(r"^\{(.*)\}$", r"\1", path).removeprefix("$").removeprefix(".")
    if path:
        out["jsonPath"] = path
    if web.get("insecure"):
        warn("web.insecure", "Ramp always verifies certificates: configure the CA (caFile)")
    for key in sorted(
        set(web) - {"url", "method", "headers", "body", "jsonBody", "timeoutSeconds"}
        - {"jsonPath", "insecure"}
    ):  # fmt: skip
        warn(f"web.{key}", "no Ramp equivalent: dropped")
    return out


def bool_literals(condition: str) -> str:
    """``result == true`` on a web value → ``result == 1.0`` (Ramp's booleans are doubles).

    >>> bool_literals("result == true || result != false")
    'result == 1.0 || result != 0.0'
    """
    return re.sub(r"\btrue\b", "1.0", re.sub(r"\bfalse\b", "0.0", condition))


_FIELD = re.compile(r"\bresult((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def fold_fields(conditions: dict[str, str], json_path: str) -> tuple[dict[str, str], str, str]:
    """Argo's web conditions read fields of the value (``result.ok == true``); Ramp's read
    a number: one field path used by every condition moves into ``jsonPath``. Returns the
    conditions, the path and a problem ('' when none).

    >>> fold_fields({"successCondition": "result.ok == 1.0"}, "results")
    ({'successCondition': 'result == 1.0'}, 'results.ok', '')
    """
    used = {m[1] for text in conditions.values() for m in _FIELD.finditer(text)}
    if not used:
        return conditions, json_path, ""
    if len(used) > 1:
        return conditions, json_path, f"reads several fields ({', '.join(sorted(used))})"
    field = used.pop()
    folded = {k: _FIELD.sub("result", v) for k, v in conditions.items()}
    path = f"{json_path}{field}" if json_path else field.lstrip(".")
    return folded, path, ""


def finish_check(out: Obj, check: Obj, extra: set[str], warn: Warn) -> Obj:
    """The converted metric ``out`` (schedule, limits, conditions) with its check source;
    the fields of Argo's metric with no Ramp equivalent (``extra``) warned on."""
    out.update(check)
    if "web" in check:
        keys = ("successCondition", "failureCondition")
        conditions: dict[str, str] = {k: out[k] for k in keys if k in out}
        conditions, path, problem = fold_fields(conditions, check["web"].get("jsonPath", ""))
        out.update(conditions)
        if path:
            check["web"]["jsonPath"] = path
        if problem:
            warn("successCondition", f"{problem}: one value only")
    for key in sorted(extra - {"provider", "successCondition", "failureCondition"}):
        warn(key, "no Ramp equivalent: dropped")
    return out
