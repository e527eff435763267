"""The blue/green panel of ``kubectl ramp get NAME [--watch]``: pure, like :mod:`render`.

It reads what the operator writes (:mod:`ramp.core.bluegreen`): ``stableRevision`` is
blue (the active revision until the switch), ``canaryRevision`` green while a release
runs, and ``status.blueGreen``: ``activeRevision`` and ``previewRevision`` (what each
Service selects), ``waitingFor`` (why the switch has not happened yet), ``switchedAt``,
and after a completed release ``warmRevision`` / ``warmUntil`` (the rollback window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from ramp.api.labels import REVISION_LABEL
from ramp.cli.facts import age, images, parse_time
from ramp.cli.tables import make_table
from ramp.core.config_tracking import describe_config

Obj = Mapping[str, Any]


def is_blue_green(rollout: Obj) -> bool:
    return bool(((rollout.get("spec") or {}).get("strategy") or {}).get("blueGreen"))


def in_window(rollout: Obj, now: datetime) -> bool:
    """A warm previous revision that a rollback can still flip back to at ``now``."""
    bg = (rollout.get("status") or {}).get("blueGreen") or {}
    until = parse_time(bg.get("warmUntil"))
    return bool(bg.get("warmRevision")) and until is not None and now < until


def remaining(text: Any, now: datetime | None) -> str:
    """``3m10s`` from ``now`` to a timestamp; ``0s`` once it has passed.

    >>> from datetime import UTC
    >>> remaining("2024-05-01T12:03:10Z", datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))
    '3m10s'
    """
    moment = parse_time(text)
    if moment is None or now is None:
        return "-"
    return age(now.isoformat(), moment)


class Sides:
    """Which revision is which, from the status."""

    def __init__(self, rollout: Obj, deployments: Sequence[Obj]) -> None:
        spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
        self.name = str((rollout.get("metadata") or {}).get("name", ""))
        self.strategy: Obj = (spec.get("strategy") or {}).get("blueGreen") or {}
        self.bg: Obj = status.get("blueGreen") or {}
        self.status = status
        self.phase = status.get("phase")
        self.blue: str | None = status.get("stableRevision")
        self.green: str | None = status.get("canaryRevision")
        self.aborted = bool(self.green) and status.get("abortedRevision") == self.green
        self.releasing = bool(self.green) and not self.aborted
        self.active: str | None = self.bg.get("activeRevision") or self.blue
        self.preview: str | None = self.bg.get("previewRevision")
        self.warm: str | None = self.bg.get("warmRevision")
        self.counts: dict[str, tuple[int, int]] = {}
        for dep in deployments:
            meta = dep.get("metadata") or {}
            rev = (meta.get("labels") or {}).get(REVISION_LABEL)
            if rev:
                dstatus = dep.get("status") or {}
                self.counts[rev] = (
                    int((dep.get("spec") or {}).get("replicas") or 0),
                    int(dstatus.get("readyReplicas") or 0),
                )

    def side(self, revision: str | None) -> str:
        """``blue``/``green`` while a release runs or was aborted; ``warm`` for the
        previous revision in the rollback window; ``old`` otherwise."""
        if revision is None:
            return "-"
        if self.green:
            if revision == self.blue:
                return "blue"
            if revision == self.green:
                return "green"
        elif revision == self.blue:
            return "active"
        if revision == self.warm:
            return "warm"
        return "old"

    def ready(self, revision: str | None) -> str:
        desired, ready = self.counts.get(revision or "", (0, 0))
        return f"{ready}/{desired} ready"

    def serves(self, revision: str) -> str:
        services = []
        if revision == self.active:
            services.append("active")
        if revision == self.preview and self.strategy.get("previewService"):
            services.append("preview")
        return "+".join(services) or "-"


def _revision_label(sides: Sides, revision: str | None) -> str:
    if not revision:
        return "-"
    return f"{revision} ({sides.side(revision)}, {sides.ready(revision)})"


def _preview_text(sides: Sides) -> str:
    """What the preview Service shows (docs/bluegreen.md: the active revision whenever
    green has no ready pods or no release runs, so a preview is never empty)."""
    service = sides.strategy.get("previewService")
    if not service:
        return "no previewService"
    preview = sides.preview
    if preview is None:
        return f"Service {service}: not pinned yet"
    shown = _revision_label(sides, preview)
    if sides.releasing and preview == sides.green:
        return f"{shown} via Service {service}"
    if sides.releasing:
        why = "until green has ready pods"
    elif sides.aborted:
        why = "green was aborted"
    else:
        why = "no release running"
    return f"{shown} via Service {service}: the active revision ({why})"


def _switch_text(sides: Sides, now: datetime | None) -> Text:
    bg = sides.bg
    if sides.aborted:
        return Text(f"aborted: the active Service is on blue {sides.blue}", style="red")
    if not sides.releasing:
        return Text("no release in progress", style="dim")
    switched = bg.get("switchedAt")
    if switched:
        text = f"switched to green at {switched} ({age(switched, now)} ago)"
        if sides.strategy.get("postPromotionAnalysis") and not bg.get("skipAnalysis"):
            text += "; post-promotion analysis runs, blue stays at full size"
        return Text(text, style="green")
    why = bg.get("waitingFor") or sides.status.get("message") or "-"
    granted = "promoted; " if bg.get("promoted") else ""
    return Text(f"not yet: {granted}{why}", style="yellow")


def _rollback_text(sides: Sides, now: datetime | None) -> Text:
    bg = sides.bg
    if sides.aborted:
        return Text("-", style="dim")
    if sides.releasing:
        if bg.get("switchedAt"):
            return Text(
                f"blue {sides.blue} is warm: an abort or a failed post-promotion analysis "
                "flips back at once"
            )
        return Text("the active Service has not moved: an abort keeps blue", style="dim")
    until = bg.get("warmUntil")
    if sides.warm and until:
        moment = parse_time(until)
        if now is not None and moment is not None and now < moment:
            return Text(
                f"{sides.warm} warm until {until} (in {remaining(until, now)}): "
                f"kubectl ramp undo {sides.name} flips back to it",
                style="green",
            )
        return Text(
            f"window over at {until}: {sides.warm} goes once the active Service lists none "
            "of its endpoints",
            style="dim",
        )
    return Text("no warm previous revision (window over, or the first revision)", style="dim")


def bluegreen_header(rollout: Obj, sides: Sides) -> list[tuple[str, RenderableType]]:
    """The header rows that replace canary's Step and Weight rows."""
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    services = f"active Service {sides.strategy.get('activeService', '?')}"
    if sides.strategy.get("previewService"):
        services += f", preview Service {sides.strategy['previewService']}"
    per_side = ", ".join(
        f"{sides.side(rev)} {sides.counts.get(rev, (0, 0))[1]}"
        for rev in dict.fromkeys(r for r in (sides.blue, sides.green, sides.warm) if r)
    )
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)} active"
    return [
        ("Strategy", f"blue-green ({services})"),
        ("Ready", f"{ready}  ({per_side})" if per_side else ready),
    ]


def bluegreen_panel(sides: Sides, now: datetime | None) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("Active", _revision_label(sides, sides.active))
    grid.add_row("Preview", _preview_text(sides))
    grid.add_row("Switch", _switch_text(sides, now))
    grid.add_row("Rollback", _rollback_text(sides, now))
    return grid


def bluegreen_revisions(sides: Sides, deployments: Sequence[Obj]) -> Table:
    """Each child Deployment with its side and the Services that select it."""
    config = {id(d): describe_config((d.get("spec") or {}).get("template")) for d in deployments}
    tracked = any(config.values())  # tracked configuration: the copies each revision reads
    columns = ["REVISION", "SIDE", "SERVES", "IMAGE", *(["CONFIG"] if tracked else [])]
    table = make_table(*columns, "DESIRED", "CURRENT", "READY")
    order = {"green": 0, "active": 1, "blue": 1, "warm": 2}
    style = {"green": "cyan", "blue": "blue", "active": "green", "warm": "yellow"}

    def rev_of(d: Obj) -> str:
        return str(((d.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "?"))

    def key(d: Obj) -> tuple[int, str]:
        return order.get(sides.side(rev_of(d)), 3), str((d.get("metadata") or {}).get("name"))

    for dep in sorted(deployments, key=key):
        spec, dstatus = dep.get("spec") or {}, dep.get("status") or {}
        rev = rev_of(dep)
        side = sides.side(rev)
        ready = int(dstatus.get("readyReplicas") or 0)
        desired = int(spec.get("replicas") or 0)
        table.add_row(
            Text(rev, style=style.get(side, "dim")),
            Text(side, style=style.get(side, "dim")),
            sides.serves(rev),
            images(spec.get("template")),
            *([config[id(dep)] or "-"] if tracked else []),
            str(desired),
            str(int(dstatus.get("replicas") or 0)),
            Text(str(ready), style="green" if ready >= desired else "yellow"),
        )
    return table


def rollback_refusal(rollout: Obj, now: datetime) -> str | None:
    """Why ``kubectl ramp undo`` cannot flip a blue-green Rollout back to its warm previous
    revision at ``now`` (the operator's own rules, :meth:`bg_steady` and :meth:`bg_tokens`),
    or None when it can."""
    sides = Sides(rollout, ())
    name = sides.name
    if sides.releasing:
        where = "is on green" if sides.bg.get("switchedAt") else "has not moved"
        return (
            f"a release of {sides.green} is in progress (the active Service {where}): "
            f"`kubectl ramp abort {name}` keeps or flips back to blue {sides.blue}"
        )
    if not sides.warm:
        return (
            "no warm previous revision to flip back to: the rollback window of the last "
            "release is over and its blue was scaled down (or there was no release); "
            f"`kubectl ramp undo {name} --to-revision REV` releases an old revision again"
        )
    if not in_window(rollout, now):
        return (
            f"the rollback window closed at {sides.bg.get('warmUntil')}: {sides.warm} is "
            "scaling down; `kubectl ramp undo "
            f"{name} --to-revision {sides.warm}` releases it again"
        )
    return None
