"""Resolve an analysis reference into the metrics to run and their arguments. Pure.

An ``analysis`` step (or background analysis) names AnalysisTemplates and may add inline
metrics and argument values. The result is a flat list of metrics and one argument map:

* arguments: each template's declared defaults, overridden by the reference's ``args``
  (which are also available to inline metrics). A declared argument that ends up without
  a value is an error, and so are two templates that default one argument differently
  (unless the reference sets it).
* metrics: the templates' metrics in the order the templates are listed, then the inline
  ones; two metrics with one name are an error (their measurements would be mixed up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ramp.api.analysis import MAX_RUN_METRICS, AnalysisRef, AnalysisTemplateSpec, Metric


class AnalysisSpecError(ValueError):
    """The analysis cannot be resolved; the message says what to fix."""


@dataclass(frozen=True)
class ResolvedAnalysis:
    """The metrics of an analysis run and the values of ``{{args.NAME}}``."""

    metrics: tuple[Metric, ...]
    args: Mapping[str, str] = field(default_factory=dict)


def resolve_analysis(
    ref: AnalysisRef, templates: Mapping[str, AnalysisTemplateSpec]
) -> ResolvedAnalysis:
    """Combine the referenced templates (by name, from the Rollout's namespace) and the
    inline metrics; AnalysisSpecError when a template is missing, an argument has no
    value or a metric name is used twice."""
    given = {arg.name: arg.value for arg in ref.args if arg.value is not None}
    defaults: dict[str, tuple[str | None, str]] = {}  # name -> (default, template)
    owners: dict[str, str] = {}
    metrics: list[Metric] = []
    for template_ref in ref.templates:
        name = template_ref.template_name
        spec = templates.get(name)
        if spec is None:
            raise AnalysisSpecError(f"AnalysisTemplate {name!r} not found")
        for arg in spec.args:
            if arg.name in given:
                continue
            previous = defaults.get(arg.name)
            if previous is None or previous[0] is None:
                defaults[arg.name] = (arg.value, name)
            elif arg.value is not None and arg.value != previous[0]:
                raise AnalysisSpecError(
                    f"templates {previous[1]!r} and {name!r} give argument {arg.name!r} "
                    "different defaults; set it in the analysis args"
                )
        for metric in spec.metrics:
            _claim(owners, metric.name, f"template {name!r}")
            metrics.append(metric)
    for metric in ref.metrics:
        _claim(owners, metric.name, "the inline metrics")
        metrics.append(metric)
    if len(metrics) > MAX_RUN_METRICS:
        raise AnalysisSpecError(
            f"{len(metrics)} metrics once the templates are resolved; an analysis runs at "
            f"most {MAX_RUN_METRICS} (templates and inline metrics together)"
        )
    args = dict(given)
    for arg_name, (value, template) in defaults.items():
        if value is None:
            raise AnalysisSpecError(
                f"argument {arg_name!r} of template {template!r} has no value; "
                "give it in the analysis args"
            )
        args[arg_name] = value
    return ResolvedAnalysis(tuple(metrics), args)


def _claim(owners: dict[str, str], metric: str, owner: str) -> None:
    if metric in owners:
        raise AnalysisSpecError(
            f"metric {metric!r} is defined twice ({owners[metric]} and {owner}); "
            "metric names must be unique within an analysis"
        )
    owners[metric] = owner
