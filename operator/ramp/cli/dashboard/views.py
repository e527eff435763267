"""What the dashboard shows: pure functions from API objects (dicts) to JSON-able data and HTML.

Nothing here talks to the API server or reads the clock, so every view is unit-tested on
plain dicts. The server (:mod:`ramp.cli.dashboard.server`) feeds them what the watches saw.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ramp.api.verbs import NAMES
from ramp.cli.render import images, parse_steps, step_label, step_position
from ramp.core.plan import REVISION_LABEL, ROLE_LABEL

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


# -- HTML (the pages work without JavaScript for reading) -----------------------------------

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="ramp-csrf" content="{csrf}">
<title>{title} · Ramp</title>
<link rel="stylesheet" href="/static/vendor/uPlot.min.css">
<link rel="stylesheet" href="/static/app.css">
</head>
<body data-page="{page}" {data}>
<a class="skip" href="#main">Skip to content</a>
<header><a href="/" class="brand">Ramp</a> <span class="context">{context}</span>
<span id="live" class="live" role="status" aria-live="polite">static view</span></header>
<main id="main">
{body}
</main>
<script src="/static/vendor/uPlot.iife.min.js" defer></script>
<script src="/static/app.js" defer></script>
</body>
</html>
"""

LIST_COLUMNS = (
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("phase", "Phase"),
    ("strategy", "Strategy"),
    ("step", "Step"),
    ("weight", "Weight (desired/actual)"),
    ("ready", "Ready"),
    ("message", "Message"),
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def list_row_html(row: Mapping[str, Any]) -> str:
    href = f"/rollouts/{_e(row['namespace'])}/{_e(row['name'])}"
    cells = {
        "namespace": _e(row["namespace"]),
        "name": f'<a href="{href}">{_e(row["name"])}</a>',
        "phase": f'<span class="phase phase-{_e(row["phase"])}">{_e(row["phase"])}</span>',
        "strategy": _e(row["strategy"]),
        "step": _e(row["step"]),
        "weight": f"{_e(row['desiredWeight'])}% / {_e(row['actualWeight'])}%",
        "ready": _e(row["ready"]),
        "message": _e(row["message"]),
    }
    tds = "".join(f'<td data-col="{k}">{cells[k]}</td>' for k, _ in LIST_COLUMNS)
    return f'<tr data-key="{_e(row["namespace"])}/{_e(row["name"])}">{tds}</tr>'


def page(title: str, page_name: str, body: str, context: str, csrf: str, **data: str) -> str:
    attrs = " ".join(f'data-{k}="{_e(v)}"' for k, v in data.items())
    return _PAGE.format(
        title=_e(title),
        page=_e(page_name),
        data=attrs,
        body=body,
        context=_e(context),
        csrf=_e(csrf),
    )


def list_page(
    rows: Sequence[Mapping[str, Any]],
    namespace: str | None,
    namespaces: Sequence[str],
    context: str,
    csrf: str,
) -> str:
    options = "".join(
        f'<option value="{_e(ns)}"{" selected" if ns == namespace else ""}>{_e(ns)}</option>'
        for ns in namespaces
    )
    head = "".join(f'<th scope="col">{_e(label)}</th>' for _, label in LIST_COLUMNS)
    body_rows = "".join(list_row_html(r) for r in rows)
    empty = "" if rows else '<p id="empty">No Rollouts here.</p>'
    body = f"""<h1>Rollouts</h1>
<form method="get" action="/" class="filter">
<label for="ns">Namespace</label>
<select id="ns" name="namespace"><option value="">all watched</option>{options}</select>
<button type="submit">Filter</button>
</form>
<table id="rollouts" class="rollouts">
<caption class="sr-only">Rollouts, updated live</caption>
<thead><tr>{head}</tr></thead>
<tbody>{body_rows}</tbody>
</table>
{empty}"""
    return page("Rollouts", "list", body, context, csrf, namespace=namespace or "")


def detail_page(namespace: str, name: str, view: Mapping[str, Any], context: str, csrf: str) -> str:
    s = view["summary"]
    current = ' aria-current="step"'
    steps = "".join(
        f'<li class="step step-{_e(st["state"])}"'
        f"{current if st['state'] == 'current' else ''}>{_e(st['label'])}</li>"
        for st in view["steps"]
    )
    buttons = "".join(
        f'<button type="button" class="verb" data-verb="{v}" id="verb-{v}">{v}</button>'
        for v in view["verbs"]
    )
    events = "".join(
        f"<tr><td>{_e(e['time'])}</td><td>{_e(e['type'])}</td><td>{_e(e['reason'])}</td>"
        f"<td>{_e(e['message'])}</td></tr>"
        for e in view["events"]
    )
    conditions = "".join(
        f"<tr><td>{_e(c['type'])}</td><td>{_e(c['status'])}</td><td>{_e(c['reason'])}</td>"
        f"<td>{_e(c['message'])}</td></tr>"
        for c in view["conditions"]
    )
    revs = "".join(
        f"<tr><td>{_e(r['revision'])}</td><td>{_e(r['role'])}</td><td>{_e(r.get('images'))}</td>"
        f"<td>{_e(r.get('ready'))}/{_e(r.get('replicas'))}</td><td>{_e(r.get('created'))}</td></tr>"
        for r in view["revisions"]
    )
    body = f"""<p><a href="/?namespace={_e(namespace)}">&larr; all Rollouts</a></p>
<h1>Rollout {_e(namespace)}/{_e(name)}</h1>
<section aria-labelledby="h-summary" class="summary">
<h2 id="h-summary" class="sr-only">Summary</h2>
<dl>
<dt>Phase</dt><dd id="phase"><span class="phase phase-{_e(s["phase"])}">{_e(s["phase"])}</span></dd>
<dt>Step</dt><dd id="step">{_e(s["step"])}</dd>
<dt>Weight</dt>
<dd id="weight">{_e(s["desiredWeight"])}% desired / {_e(s["actualWeight"])}% actual</dd>
<dt>Ready</dt><dd id="ready">{_e(s["ready"])}</dd>
<dt>Revisions</dt><dd id="revs">stable {_e(s["stable"])}, canary {_e(s["canary"])}</dd>
<dt>Message</dt><dd id="message">{_e(s["message"])}</dd>
</dl>
</section>
<section aria-labelledby="h-actions">
<h2 id="h-actions">Actions</h2>
<div class="verbs" role="group" aria-label="Rollout actions">{buttons}</div>
<p id="action-result" role="alert" aria-live="assertive"></p>
</section>
<section aria-labelledby="h-steps">
<h2 id="h-steps">Steps</h2>
<ol id="steps" class="steps">{steps}</ol>
</section>
<section aria-labelledby="h-split">
<h2 id="h-split">Replica split over time</h2>
<div id="split-chart" class="chart"></div>
</section>
<section aria-labelledby="h-metrics">
<h2 id="h-metrics">Analysis measurements</h2>
<div id="metrics"><p>Measurements appear here when analyses run.</p></div>
</section>
<section aria-labelledby="h-events">
<h2 id="h-events">Events</h2>
<table id="events"><thead><tr><th scope="col">Time</th><th scope="col">Type</th>
<th scope="col">Reason</th><th scope="col">Message</th></tr></thead><tbody>{events}</tbody></table>
</section>
<section aria-labelledby="h-conditions">
<h2 id="h-conditions">Conditions</h2>
<table id="conditions"><thead><tr><th scope="col">Type</th><th scope="col">Status</th>
<th scope="col">Reason</th><th scope="col">Message</th></tr></thead>
<tbody>{conditions}</tbody></table>
</section>
<section aria-labelledby="h-revisions">
<h2 id="h-revisions">Revision history</h2>
<table id="revisions"><thead><tr><th scope="col">Revision</th><th scope="col">Role</th>
<th scope="col">Images</th><th scope="col">Ready</th><th scope="col">Created</th></tr></thead>
<tbody>{revs}</tbody></table>
</section>"""
    return page(
        f"{namespace}/{name}", "detail", body, context, csrf, namespace=namespace, name=name
    )
