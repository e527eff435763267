"""``kubectl ramp plan``: what a Rollout's steps will do, offline (no cluster).

For every step: the weight in force, the canary and stable replicas it means, the actual
weight those replicas give and a warning when the weight is not representable (10 % of 3
replicas is really 33 %), and the least time the step takes. The arithmetic is the
operator's own (:func:`ramp.core.split.split_replicas`, :func:`ramp.core.plan.step_weight`,
:func:`ramp.api.durations.parse_duration`); this module only arranges it.

Least time of a step: a ``pause`` with a duration takes that long; a ``pause: {}`` waits
for a promote (no bound); an ``analysis`` step needs each metric's ``count`` passes, the
first ``initialDelay`` after the analysis starts and then one per ``interval`` (the rules of
:mod:`ramp.core.verdicts`), so at least ``initialDelay + (count - 1) * interval`` for its
slowest metric; a ``setWeight`` step takes as long as its pods need to become ready
(not known offline: counted as zero).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ramp.api.analysis import AnalysisRef, AnalysisTemplateSpec, Metric
from ramp.api.durations import parse_duration
from ramp.api.rollout import Rollout
from ramp.cli.facts import step_label
from ramp.cli.tables import make_table
from ramp.core.plan import step_weight
from ramp.core.routers import exact_routers
from ramp.core.split import split_replicas
from ramp.core.traffic import routed_split


@dataclass(frozen=True)
class StepPlan:
    """One row of the plan."""

    index: int
    """1-based step number; ``len(steps) + 1`` for the final promotion."""
    step: str
    weight: int
    canary: int
    stable: int
    actual_weight: int
    representable: bool
    least_seconds: float | None
    """The least time the step takes; None when it waits for a promote or is unknown."""
    waits_for_promote: bool = False
    note: str = ""
    warning: str | None = None


@dataclass(frozen=True)
class RolloutPlan:
    """The plan of one Rollout."""

    name: str
    replicas: int
    max_surge: int | str
    max_unavailable: int | str
    steps: list[StepPlan] = field(default_factory=list)
    least_seconds: float = 0.0
    """Sum of the steps' least times (pauses and analyses; readiness not counted)."""
    waits_for_promote: list[int] = field(default_factory=list)
    """Steps (1-based) that wait for a promote."""
    unknown: list[int] = field(default_factory=list)
    """Steps (1-based) whose least time cannot be known offline."""
    warnings: list[str] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        """The plan as JSON-ready data (camelCase keys, like the API)."""

        return camel_data(self)


def camel_data(plan: Any) -> dict[str, Any]:
    """A plan dataclass as JSON-ready data with camelCase keys (like the API)."""

    def camel(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(part.capitalize() for part in rest)

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {camel(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    data: dict[str, Any] = convert(asdict(plan))
    return data


def format_seconds(seconds: float) -> str:
    """``90`` → ``1m30s``; ``0.5`` → ``500ms``; ``0`` → ``0s``.

    >>> [format_seconds(s) for s in (0, 0.5, 45, 90, 3600, 5430)]
    ['0s', '500ms', '45s', '1m30s', '1h', '1h30m30s']
    """
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return "".join(parts)


def metric_least_seconds(metric: Metric) -> float:
    """The least time a metric needs to pass: ``initialDelay + (count - 1) * interval``."""
    return metric.initial_delay_seconds + (metric.count - 1) * metric.interval_seconds


def analysis_least_seconds(
    ref: AnalysisRef, templates: Mapping[str, AnalysisTemplateSpec]
) -> tuple[float | None, str]:
    """Least time of an analysis (its slowest metric) and a note; None when unknown."""
    metrics = list(ref.metrics)
    missing = []
    for t in ref.templates:
        spec = templates.get(t.template_name)
        if spec is None:
            missing.append(t.template_name)
        else:
            metrics.extend(spec.metrics)
    if missing:
        return None, f"template {', '.join(missing)} is not in the file"
    slowest = max(metrics, key=metric_least_seconds)
    times = [
        format_seconds(slowest.initial_delay_seconds + k * slowest.interval_seconds)
        for k in range(slowest.count)
    ]
    if len(times) > 3:
        times = [times[0], times[1], "…", times[-1]]
    return metric_least_seconds(slowest), f"{slowest.name} passes at {', '.join(times)}"


def plan_rollout(
    rollout: Rollout,
    templates: Mapping[str, AnalysisTemplateSpec] | None = None,
    replicas: int | None = None,
) -> RolloutPlan:
    """The plan of ``rollout``'s steps for ``replicas`` (default ``spec.replicas``)."""
    templates = templates or {}
    spec = rollout.spec
    total = spec.replicas if replicas is None else replicas
    steps = spec.canary.steps
    rows: list[StepPlan] = []
    warnings: list[str] = []
    waits: list[int] = []
    unknown: list[int] = []
    least = 0.0
    routes = ", ".join(router.describe() for router in exact_routers(spec))
    for i, step in enumerate(steps):
        weight = step_weight(steps, i)
        split = routed_split(total, weight) if routes else split_replicas(total, weight)
        seconds: float | None = 0.0
        note, warning, waits_here = "", None, False
        if step.set_weight is not None:
            note = "when the pods are ready"
            if routes:  # the route's weights give it exactly; the stable keeps its size
                note = f"{weight}% of the requests of {routes}, once acknowledged"
            elif not split.representable:
                warning = (
                    f"step {i + 1}: setWeight {weight} with {total} replicas is "
                    f"{split.canary} canary / {split.stable} stable: actual weight "
                    f"{split.actual_weight}%"
                )
                warnings.append(warning)
        elif step.pause is not None:
            if step.pause.duration is None:
                seconds, waits_here = None, True
                waits.append(i + 1)
            else:
                seconds = parse_duration(step.pause.duration).total_seconds()
        elif step.analysis is not None:
            seconds, note = analysis_least_seconds(step.analysis, templates)
            if seconds is None:
                unknown.append(i + 1)
        least += seconds or 0.0
        rows.append(
            StepPlan(
                index=i + 1,
                step=step_label(step),
                weight=weight,
                canary=split.canary,
                stable=split.stable,
                actual_weight=weight if routes else split.actual_weight,
                representable=bool(routes) or split.representable,
                least_seconds=seconds,
                waits_for_promote=waits_here,
                note=note,
                warning=warning,
            )
        )
    final = split_replicas(total, step_weight(steps, len(steps)))
    rows.append(
        StepPlan(
            index=len(steps) + 1,
            step="promote",
            weight=final.weight,
            canary=final.canary,
            stable=final.stable,
            actual_weight=final.actual_weight,
            representable=True,
            least_seconds=0.0,
            note="the canary becomes stable, no pod restarted",
        )
    )
    canary = spec.canary
    return RolloutPlan(
        name=str(rollout.metadata.get("name", "")),
        replicas=total,
        max_surge=canary.surge,
        max_unavailable=canary.unavailable,
        steps=rows,
        least_seconds=least,
        waits_for_promote=waits,
        unknown=unknown,
        warnings=warnings,
    )


def least_time_text(plan: RolloutPlan) -> str:
    """One sentence: the least time of the steps and what it does not include."""
    text = f"at least {format_seconds(plan.least_seconds)} plus the time pods take to be ready"
    if plan.waits_for_promote:
        steps = ", ".join(str(i) for i in plan.waits_for_promote)
        text += f"; waits for promote at step {steps}"
    if plan.unknown:
        steps = ", ".join(str(i) for i in plan.unknown)
        text += f"; analysis time unknown at step {steps}"
    return text


def render_plan(plan: RolloutPlan) -> RenderableType:
    """The plan as a table, its least time and its warnings."""
    title = Text.assemble(
        ("Rollout ", "bold"),
        (plan.name or "(unnamed)", "bold cyan"),
        f": {plan.replicas} replicas, maxSurge {plan.max_surge}, "
        f"maxUnavailable {plan.max_unavailable}",
    )
    table: Table = make_table(
        "#", "STEP", "WEIGHT", "CANARY", "STABLE", "ACTUAL", "LEAST TIME", "NOTE"
    )
    for row in plan.steps:
        if row.waits_for_promote:
            least = Text("waits for promote", style="yellow")
        elif row.least_seconds is None:
            least = Text("unknown", style="yellow")
        else:
            least = Text(format_seconds(row.least_seconds))
        actual = Text(f"{row.actual_weight}%", style="" if row.representable else "bold yellow")
        if not row.representable:
            actual.append(" !", style="bold yellow")
        table.add_row(
            str(row.index),
            row.step,
            f"{row.weight}%",
            str(row.canary),
            str(row.stable),
            actual,
            least,
            Text(row.note, style="dim"),
        )
    parts: list[RenderableType] = [title, table, Text(f"Least time: {least_time_text(plan)}")]
    if plan.warnings:
        parts.append(Text("Warnings:", style="bold yellow"))
        parts += [Text(f"  ! {w}", style="yellow") for w in plan.warnings]
    return Group(*parts)


def load_documents(docs: Iterable[Any]) -> tuple[list[Rollout], dict[str, AnalysisTemplateSpec]]:
    """The Rollouts and AnalysisTemplates among parsed YAML documents (others ignored).

    Raises ValueError naming the document that does not validate.
    """
    rollouts: list[Rollout] = []
    templates: dict[str, AnalysisTemplateSpec] = {}
    for n, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            continue
        docs_in = doc.get("items") if doc.get("kind") == "List" else [doc]
        for item in docs_in or []:
            kind = item.get("kind") if isinstance(item, dict) else None
            name = ((item.get("metadata") or {}).get("name") if kind else None) or "?"
            try:
                if kind == "Rollout":
                    rollouts.append(Rollout.model_validate(item))
                elif kind == "AnalysisTemplate":
                    templates[name] = AnalysisTemplateSpec.model_validate(item.get("spec") or {})
            except ValueError as exc:
                raise ValueError(f"document {n} ({kind} {name}) is not valid:\n{exc}") from exc
    return rollouts, templates


def plans_data(plans: Sequence[RolloutPlan]) -> list[dict[str, Any]]:
    """The plans as data for ``-o json|yaml``."""
    return [p.to_data() for p in plans]
