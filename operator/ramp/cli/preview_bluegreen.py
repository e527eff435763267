"""``kubectl ramp plan`` for a blue-green Rollout: the release's sequence, offline.

The sequence is the one :mod:`ramp.core.bluegreen` walks: green up at
``previewReplicaCount``, the preview Service pinned to green once it has ready pods, the
pre-promotion analysis, the wait for a promote or ``autoPromotionSeconds``, green to full
size, the switch (once every green pod is a ready endpoint of the preview Service), the
post-promotion analysis while blue stays at full size, blue warm until
``scaleDownDelaySeconds`` after the switch, then blue scaled down. With ``httpRoutes`` the
switch is the routes' weights (active / preview: 100 / 0, then 0 / 100 in one patch, counted
once the gateway acknowledges it), the active Service keeps selecting blue until the release
completes (an abort or a failed post-promotion analysis writes 100 / 0 back at once), then
selects green with the weights back on it (a rollback goes back the same way: 0 / 100 to
blue on the preview Service first). Least times come from
the file's values, analysis times as for canary (:func:`analysis_least_seconds`); the
time pods take to become ready is not known offline and counts as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ramp.api.analysis import AnalysisRef, AnalysisTemplateSpec
from ramp.api.rollout import BlueGreenStrategy, Rollout
from ramp.cli.preview import analysis_least_seconds, camel_data, format_seconds
from ramp.cli.tables import make_table


@dataclass(frozen=True)
class BlueGreenStepPlan:
    """One row: what runs (blue, green), what each Service selects, the least time."""

    index: int
    step: str
    blue: int
    green: int
    active: str
    """``blue`` or ``green``: the revision the active Service selects."""
    preview: str
    """What the preview Service selects (``-`` without a previewService)."""
    least_seconds: float | None
    """None when it waits for a promote or is unknown."""
    waits_for_promote: bool = False
    note: str = ""
    route: str = ""
    """With ``httpRoutes``: the routes' weights, active / preview Service ("100/0")."""


@dataclass(frozen=True)
class BlueGreenPlan:
    name: str
    replicas: int
    active_service: str
    preview_service: str | None
    strategy: str = "blueGreen"
    routes: str = ""
    """The HTTPRoutes the switch goes through ("" without ``httpRoutes``)."""
    steps: list[BlueGreenStepPlan] = field(default_factory=list)
    least_seconds: float = 0.0
    """Sum of the steps' least times (readiness not counted)."""
    switch_after_seconds: float = 0.0
    """Least time from the start to the switch."""
    switch_step: int = 0
    rollback_window_seconds: int = 0
    """After the switch, blue stays warm (a rollback flips back) at least this long."""
    waits_for_promote: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    on_abort: str = ""

    def to_data(self) -> dict[str, Any]:
        data = camel_data(self)
        if not self.routes:  # the route's fields only for a Rollout with httpRoutes
            data.pop("routes")
            for step in data["steps"]:
                step.pop("route")
        return data


def _analysis_name(ref: AnalysisRef) -> str:
    names = [t.template_name for t in ref.templates] + [m.name for m in ref.metrics]
    return ", ".join(names)


def plan_blue_green(
    rollout: Rollout,
    templates: Mapping[str, AnalysisTemplateSpec] | None = None,
    replicas: int | None = None,
) -> BlueGreenPlan:
    """The blue-green sequence of ``rollout`` for ``replicas`` (default ``spec.replicas``)."""
    templates = templates or {}
    bg: BlueGreenStrategy | None = rollout.spec.blue_green
    assert bg is not None
    total = rollout.spec.replicas if replicas is None else replicas
    preview_size = min(bg.preview_replica_count or total, total)
    has_preview = bg.preview_service is not None
    routes = ", ".join(bg.http_routes or [])
    rows: list[BlueGreenStepPlan] = []
    waits: list[int] = []
    unknown: list[int] = []
    warnings: list[str] = []

    def row(
        step: str,
        green: int,
        active: str,
        preview: str,
        seconds: float | None,
        note: str = "",
        *,
        blue: int = total,
        waits_here: bool = False,
        switched: bool = False,
    ) -> None:
        index = len(rows) + 1
        if waits_here:
            waits.append(index)
        elif seconds is None:
            unknown.append(index)
        route = ""
        if routes:  # the weights switch; the active Service selects green once completed
            route = "0/100" if switched else "100/0"
            active = "blue" if switched else active
        rows.append(
            BlueGreenStepPlan(
                index, step, blue, green, active, preview if has_preview else "-", seconds,
                waits_here, note, route,
            )
        )  # fmt: skip

    if bg.preview_replica_count is not None and bg.preview_replica_count > total:
        warnings.append(
            f"previewReplicaCount {bg.preview_replica_count} is more than {total} replicas: "
            f"green runs {total}"
        )
    size = "full size" if preview_size == total else f"previewReplicaCount {preview_size}"
    row(f"green up at {size}", preview_size, "blue", "blue", 0.0, "when green's pods are ready")
    if has_preview:
        row(
            "preview pinned to green",
            preview_size,
            "blue",
            "green",
            0.0,
            "once green has ready pods (never empty)" + header_note(bg),
        )
    if bg.pre_promotion_analysis is not None:
        seconds, note = analysis_least_seconds(bg.pre_promotion_analysis, templates)
        name = _analysis_name(bg.pre_promotion_analysis)
        row(f"pre-promotion analysis {name}", preview_size, "blue", "green", seconds, note)
    if not bg.auto_promotion:
        row(
            "wait for promote",
            preview_size,
            "blue",
            "green",
            None,
            "autoPromotionEnabled: false",
            waits_here=True,
        )
    else:
        delay = bg.auto_promotion_seconds or 0
        step = f"auto-promotion after {format_seconds(delay)}" if delay else "auto-promotion"
        row(step, preview_size, "blue", "green", float(delay), "counted from ready and verified")
    if preview_size < total:
        row("green to full size", total, "blue", "green", 0.0, "when the pods are ready")
    gate = (
        f"gated on {bg.preview_service}'s EndpointSlices"
        if has_preview
        else "once every green pod is ready"
    )
    if routes:
        gate += f"; one patch of HTTPRoute {routes}, counted once the gateway acknowledges it"
        row(f"switch {routes} to green", total, "green", "green", 0.0, gate, switched=True)
    else:
        row(f"switch {bg.active_service} to green", total, "green", "green", 0.0, gate)
    switch_index = len(rows)
    post = 0.0
    if bg.post_promotion_analysis is not None:
        seconds, note = analysis_least_seconds(bg.post_promotion_analysis, templates)
        name = _analysis_name(bg.post_promotion_analysis)
        post = seconds or 0.0
        back = "a failure writes 100/0 (blue) at once" if routes else "a failure flips back to blue"
        row(
            f"post-promotion analysis {name}",
            total,
            "green",
            "green",
            seconds,
            f"{note}; {back}" if note else back,
            switched=True,
        )
    delay = bg.scale_down_delay
    row(
        f"blue warm {format_seconds(delay)}",
        total,
        "green",
        "green",
        max(0.0, delay - post),
        "scaleDownDelaySeconds after the switch; undo flips back"
        + (
            f"; completed: {bg.active_service} selects green, the weights back on it "
            "(undo: 0/100 to blue first, acknowledged)"
            if routes
            else ""
        ),
    )
    row(
        "blue scaled down",
        total,
        "green",
        "green",
        0.0,
        f"once {bg.active_service} lists no blue endpoint",
        blue=0,
    )
    abort_delay = bg.abort_scale_down_delay
    gone = f"after {format_seconds(abort_delay)}" if abort_delay else "at once"
    on_abort = (
        f"before the switch the active Service never moves; after it, it flips back to "
        f"blue at once; green is removed {gone} (abortScaleDownDelaySeconds)"
    )
    if routes:
        on_abort = (
            f"before the switch the weights stay 100/0 (blue); after it, the pass that "
            f"decides the abort writes 100/0 back (the active Service still selects blue); "
            f"green is removed once the gateway acknowledges it, {gone} "
            f"(abortScaleDownDelaySeconds)"
        )
    return BlueGreenPlan(
        name=str(rollout.metadata.get("name", "")),
        replicas=total,
        active_service=bg.active_service,
        preview_service=bg.preview_service,
        routes=routes,
        steps=rows,
        least_seconds=sum(r.least_seconds or 0.0 for r in rows),
        switch_after_seconds=sum(r.least_seconds or 0.0 for r in rows[:switch_index]),
        switch_step=switch_index,
        rollback_window_seconds=delay,
        waits_for_promote=waits,
        unknown=unknown,
        warnings=warnings,
        on_abort=on_abort,
    )


def header_note(bg: BlueGreenStrategy) -> str:
    """The preview's header route (``previewHeaderRoute``), said on the preview's row."""
    if not bg.preview_header_route:
        return ""
    said = []
    for match in bg.preview_header_route:
        value = match.header_value
        kind, text = next(
            (k, v) for k, v in (("exact", value.exact), ("prefix", value.prefix),
                                ("regex", value.regex)) if v is not None
        )  # fmt: skip
        said.append(f"{match.header_name} {kind} {text!r}")
    return f"; requests with {' and '.join(said)} reach green through the route"


def render_blue_green_plan(plan: BlueGreenPlan) -> RenderableType:
    services = f"active Service {plan.active_service}"
    if plan.preview_service:
        services += f", preview Service {plan.preview_service}"
    if plan.routes:
        services += f", HTTPRoute {plan.routes} (ROUTE: weights active/preview)"
    title = Text.assemble(
        ("Rollout ", "bold"),
        (plan.name or "(unnamed)", "bold cyan"),
        f": blue-green, {plan.replicas} replicas, {services}",
    )
    columns = ["#", "STEP", "BLUE", "GREEN", "ACTIVE", "PREVIEW"]
    columns += ["ROUTE"] if plan.routes else []
    table: Table = make_table(*columns, "LEAST TIME", "NOTE")
    for row in plan.steps:
        if row.waits_for_promote:
            least = Text("waits for promote", style="yellow")
        elif row.least_seconds is None:
            least = Text("unknown", style="yellow")
        else:
            least = Text(format_seconds(row.least_seconds))
        cells = [str(row.index), row.step, str(row.blue), str(row.green), row.active, row.preview]
        cells += [row.route] if plan.routes else []
        table.add_row(*cells, least, Text(row.note, style="dim"))
    text = (
        f"at least {format_seconds(plan.least_seconds)} plus the time pods take to be ready; "
        f"the switch (step {plan.switch_step}) at least "
        f"{format_seconds(plan.switch_after_seconds)} after the start"
    )
    if any(i < plan.switch_step for i in plan.waits_for_promote):
        text += " and a promote"
    if plan.waits_for_promote:
        text += f"; waits for promote at step {', '.join(map(str, plan.waits_for_promote))}"
    if plan.unknown:
        text += f"; analysis time unknown at step {', '.join(map(str, plan.unknown))}"
    parts: list[RenderableType] = [
        title,
        table,
        Text(f"Least time: {text}"),
        Text(
            f"Rollback window: blue stays warm {format_seconds(plan.rollback_window_seconds)} "
            "after the switch (at least until the post-promotion analysis passes)"
        ),
        Text(f"On abort: {plan.on_abort}"),
    ]
    if plan.warnings:
        parts.append(Text("Warnings:", style="bold yellow"))
        parts += [Text(f"  ! {w}", style="yellow") for w in plan.warnings]
    return Group(*parts)
