"""What ``kubectl ramp get`` shows: pure functions from API objects (dicts) to rich renderables.

Nothing here talks to the API server or reads the clock: the objects and ``now`` are
parameters, so the views can be rendered to text and compared in tests.

* :func:`render` — the detailed view of one Rollout (``get NAME`` and ``get NAME --watch``):
  its steps with the current one highlighted, desired and actual weight, ready pods per
  revision, the latest gate measurements, conditions and recent Events.
* :func:`rollouts_table` — the list view (``get``).
* :func:`to_text` — any renderable as plain text (no colour), for pipes, CI logs and tests.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ramp.api.labels import REVISION_LABEL, ROLE_LABEL
from ramp.api.rollout import Step
from ramp.cli import render_bluegreen as bg
from ramp.cli.facts import (
    age,
    event_time,
    images,
    parse_steps,
    recent_events,
    step_label,
    step_position,
    weights_text,
)
from ramp.cli.safe import SafeConsole, visible_all, visible_obj
from ramp.cli.tables import make_table
from ramp.core.config_tracking import describe_config

Obj = Mapping[str, Any]

PHASE_STYLE = {
    "Healthy": "bold green",
    "Progressing": "bold cyan",
    "Paused": "bold yellow",
    "Aborted": "bold red",
    "Degraded": "bold red",
}
VERDICT_STYLE = {"Pass": "green", "Fail": "bold red", "Inconclusive": "yellow", "Error": "magenta"}
MAX_MEASUREMENTS = 6


def route_text(route: Obj) -> str:
    """An HTTPRoute's canary weight, desired and acknowledged by the gateway, and why not."""
    acked = route.get("acknowledged")
    text = f"desired {route.get('desired', 0)}%  acknowledged {'-' if acked is None else acked}%"
    return f"{text}  ({route['message']})" if route.get("message") else text


def _phase_text(phase: str | None) -> Text:
    return Text(phase or "Unknown", style=PHASE_STYLE.get(phase or "", "bold"))


# -- the list view ------------------------------------------------------------------------


def rollouts_table(rollouts: Sequence[Obj], *, namespaces: bool = False) -> Table:
    """``kubectl ramp get``: one row per Rollout."""
    rollouts = visible_all(rollouts)  # API strings as text (ramp.cli.safe)
    columns = ["NAMESPACE"] if namespaces else []
    table = make_table(*columns, "NAME", "PHASE", "WEIGHT", "STEP", "READY", "STABLE", "CANARY")
    table.box = box.SIMPLE
    for obj in rollouts:
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status")
        status = status or {}
        steps = parse_steps(obj)
        row = [meta.get("namespace", "")] if namespaces else []
        row += [
            meta.get("name", ""),
            _phase_text(status.get("phase")),
            weights_text(status),
            step_position(status, len(steps)),
            f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("stableRevision") or "-",
            status.get("canaryRevision") or "-",
        ]
        table.add_row(*row)
    return table


# -- the detailed view --------------------------------------------------------------------


def _header(
    rollout: Obj, steps: list[Step], rows: list[tuple[str, RenderableType]] | None = None
) -> Table:
    """The header grid; ``rows`` (blue-green) replace the canary's Step to Revisions."""
    meta, spec = rollout.get("metadata") or {}, rollout.get("spec") or {}
    status = rollout.get("status") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    phase = _phase_text(status.get("phase"))
    if spec.get("paused"):
        phase.append("  (spec.paused)", style="yellow")
    grid.add_row("Rollout", f"{meta.get('namespace', '')}/{meta.get('name', '')}")
    grid.add_row("Phase", phase)
    grid.add_row("Message", status.get("message") or "")
    if rows is not None:
        for label, value in rows:
            grid.add_row(label, value)
        for route in status.get("routes") or []:  # the preview Service's weight
            grid.add_row(f"Route {route.get('name')}", f"preview {route_text(route)}")
        _aborted_row(grid, status)
        return grid
    position = step_position(status, len(steps))
    index = status.get("currentStepIndex")
    if position == "-":
        position = f"- ({len(steps)} steps)"
    elif index is not None and int(index) < len(steps):
        position += f"  {step_label(steps[int(index)])}"
    else:
        position += "  promotion"
    grid.add_row("Step", position)
    weights = status.get("weights") or {}
    grid.add_row(
        "Weight",
        f"desired {weights.get('desired', 0)}%  actual {weights.get('actual', 0)}%",
    )
    for route in status.get("routes") or []:
        grid.add_row(f"Route {route.get('name')}", route_text(route))
    grid.add_row(
        "Ready",
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}  "
        f"(stable {status.get('stableReadyReplicas', 0)}, "
        f"canary {status.get('canaryReadyReplicas', 0)})",
    )
    revisions = f"stable {status.get('stableRevision') or '-'}"
    if status.get("canaryRevision"):
        revisions += f"  canary {status['canaryRevision']}"
    grid.add_row("Revisions", revisions)
    _aborted_row(grid, status)
    return grid


def _aborted_row(grid: Table, status: Obj) -> None:
    if status.get("abortReason"):
        grid.add_row(
            Text("Aborted", style="bold red"),
            Text(f"{status['abortReason']}: {status.get('abortMessage') or ''}", style="red"),
        )


def _steps(status: Obj, steps: list[Step]) -> Table:
    """Done steps ticked, the current one highlighted (crossed when aborted)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(width=1)
    table.add_column(justify="right")
    table.add_column()
    in_progress = bool(status.get("canaryRevision"))
    index = status.get("currentStepIndex") if in_progress else None
    aborted = status.get("phase") == "Aborted"
    paused = status.get("phase") == "Paused"
    for i, step in enumerate(steps):
        label = step_label(step)
        if index is None:
            table.add_row(Text("·", style="dim"), str(i + 1), Text(label, style="dim"))
        elif i < index:
            table.add_row(Text("✔", style="green"), str(i + 1), label)
        elif i == index:
            mark, style = (
                ("✖", "bold red")
                if aborted
                else ("⏸", "bold yellow")
                if paused
                else (
                    "▶",
                    "bold cyan",
                )
            )
            table.add_row(
                Text(mark, style=style), str(i + 1), Text(label, style=f"{style} reverse")
            )
        else:
            table.add_row(Text("○", style="dim"), str(i + 1), label)
    if not steps:
        table.add_row("", "", Text("(no steps: a new revision is promoted at once)", style="dim"))
    return table


def _revisions(status: Obj, deployments: Sequence[Obj]) -> Table:
    config = {id(d): describe_config((d.get("spec") or {}).get("template")) for d in deployments}
    tracked = any(config.values())  # tracked configuration: the copies each revision reads
    columns = ["REVISION", "ROLE", "IMAGE", *(["CONFIG"] if tracked else [])]
    table = make_table(*columns, "DESIRED", "CURRENT", "READY")
    role_of = {status.get("stableRevision"): "stable", status.get("canaryRevision"): "canary"}
    order = {"canary": 0, "stable": 1}

    def key(d: Obj) -> tuple[int, str]:
        rev = ((d.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")
        return order.get(role_of.get(rev, ""), 2), str((d.get("metadata") or {}).get("name"))

    for dep in sorted(deployments, key=key):
        meta, spec, dstatus = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status")
        dstatus = dstatus or {}
        labels = meta.get("labels") or {}
        rev = labels.get(REVISION_LABEL, "?")
        # The status says which revision is which; a role label may be stale on history.
        role = role_of.get(rev) or ("old" if status.get("stableRevision") else None)
        role = role or labels.get(ROLE_LABEL) or "old"
        ready = int(dstatus.get("readyReplicas") or 0)
        desired = int(spec.get("replicas") or 0)
        style = {"canary": "cyan", "stable": "green"}.get(role, "dim")
        table.add_row(
            Text(rev, style=style),
            Text(role, style=style),
            images(spec.get("template")),
            *([config[id(dep)] or "-"] if tracked else []),
            str(desired),
            str(int(dstatus.get("replicas") or 0)),
            Text(str(ready), style="green" if ready >= desired else "yellow"),
        )
    return table


def _measurements(status: Obj, now: datetime | None) -> Table:
    table = make_table("METRIC", "ANALYSIS", "VALUE", "VERDICT", "AGE", "MESSAGE")
    for m in (status.get("measurements") or [])[-MAX_MEASUREMENTS:]:
        verdict = str(m.get("verdict", ""))
        table.add_row(
            str(m.get("metric", "")),
            str(m.get("analysis") or ""),
            str(m.get("value") if m.get("value") is not None else "(no data)"),
            Text(verdict, style=VERDICT_STYLE.get(verdict, "")),
            age(m.get("time"), now),
            str(m.get("message") or ""),
        )
    return table


def _one_line_messages(table: Table, width: int) -> None:
    """Keep each row within ``width`` on one line: the last column is cut short (…)."""
    used = 0
    for column in table.columns[:-1]:
        cells = [Text.from_markup(str(column.header)), *column.cells]
        used += max(c.cell_len if isinstance(c, Text) else len(str(c)) for c in cells)
        column.no_wrap = True
    last = table.columns[-1]
    last.no_wrap = True
    last.overflow = "ellipsis"
    last.max_width = max(8, width - used - 3 * (len(table.columns) - 1) - 2)


def _conditions(status: Obj, compact: int | None) -> Table:
    table = make_table("CONDITION", "STATUS", "REASON", "MESSAGE")
    for c in status.get("conditions") or []:
        value = str(c.get("status", ""))
        message = str(c.get("message") or "")
        table.add_row(
            str(c.get("type", "")),
            Text(value, style="green" if value == "True" else "dim"),
            str(c.get("reason") or ""),
            # The status message is in the header already: say so instead of repeating it.
            "(the message above)" if message and message == status.get("message") else message,
        )
    if compact:
        _one_line_messages(table, compact)
    return table


def _events(events: Sequence[Obj], now: datetime | None, compact: int | None) -> Table:
    table = make_table("AGE", "TYPE", "REASON", "MESSAGE")
    for e in recent_events(events):
        kind = str(e.get("type", ""))
        table.add_row(
            age(event_time(e), now),
            Text(kind, style="yellow" if kind == "Warning" else ""),
            str(e.get("reason", "")),
            str(e.get("message", "")),
        )
    if compact:
        _one_line_messages(table, compact)
    return table


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def render(
    rollout: Obj,
    deployments: Sequence[Obj] = (),
    events: Sequence[Obj] = (),
    now: datetime | None = None,
    *,
    compact: int | None = None,
) -> RenderableType:
    """The detailed view of one Rollout.

    ``deployments`` are its child Deployments, ``events`` the Events about it, ``now`` the
    time ages are computed against (ages are ``-`` without it). ``compact=WIDTH`` keeps
    every condition and Event on one line of that width (for the live view, which must
    fit a screen). Every string of the objects is shown as text (:mod:`ramp.cli.safe`).
    """
    rollout = visible_obj(rollout)
    deployments, events = visible_all(deployments), visible_all(events)
    status = rollout.get("status") or {}
    steps = parse_steps(rollout)
    parts: list[RenderableType]
    if ((rollout.get("spec") or {}).get("strategy") or {}).get("blueGreen"):
        sides = bg.Sides(rollout, deployments)
        parts = [_header(rollout, steps, bg.bluegreen_header(rollout, sides))]
        parts += [_section("Blue/green"), bg.bluegreen_panel(sides, now)]
        parts += [_section("Revisions"), bg.bluegreen_revisions(sides, deployments)]
    else:
        parts = [_header(rollout, steps), _section("Steps"), _steps(status, steps)]
        parts += [_section("Revisions"), _revisions(status, deployments)]
    if status.get("measurements"):
        parts += [_section("Analysis (latest measurements)"), _measurements(status, now)]
    if status.get("conditions"):
        parts += [_section("Conditions"), _conditions(status, compact)]
    if events:
        parts += [_section("Events"), _events(events, now, compact)]
    return Group(*parts)


def to_text(renderable: RenderableType, width: int = 120) -> str:
    """Render to plain text: no colour, no control codes, trailing spaces removed."""
    buffer = io.StringIO()
    console = SafeConsole(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        no_color=True,
        legacy_windows=False,
        emoji=False,
        highlight=False,
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render_text(
    rollout: Obj,
    deployments: Sequence[Obj] = (),
    events: Sequence[Obj] = (),
    now: datetime | None = None,
    width: int = 120,
    compact: int | None = None,
) -> str:
    """:func:`render` as plain text."""
    return to_text(render(rollout, deployments, events, now, compact=compact), width)
