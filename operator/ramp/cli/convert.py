"""``kubectl ramp convert``: Argo Rollouts manifests to Ramp manifests, offline.

:func:`convert_documents` takes the YAML documents of a file and returns the documents to
print and the warnings: one per field that has no Ramp equivalent (named by its path),
so the exit status can say whether the conversion was lossless. What it maps:

- ``Rollout`` (``argoproj.io/v1alpha1``): replicas, selector, template or workloadRef,
  paused, progressDeadlineSeconds, revisionHistoryLimit; canary maxSurge,
  maxUnavailable, stableService, canaryService, steps (setWeight, pause, analysis) and
  background analysis; blueGreen activeService, previewService, previewReplicaCount,
  autoPromotionEnabled/Seconds, scaleDownDelaySeconds, abortScaleDownDelaySeconds,
  pre/postPromotionAnalysis.
- ``AnalysisTemplate`` / ``ClusterAnalysisTemplate`` with Prometheus metrics (and ``job``
  and ``web`` metrics as Ramp checks: :mod:`ramp.cli.convert_checks`): interval,
  count, initialDelay, the limits, conditions rewritten from Argo's expr language to CEL
  (``result[0]`` → ``result``, ``and``/``or``/``not`` → ``&&``/``||``/``!``, integer
  literals → doubles: CEL compares strictly typed values), ``{{args.x}}`` kept (names
  made identifiers), and arguments taken from ``podTemplateHashValue`` (``Latest`` /
  ``Stable``) replaced in the queries by ``{{canaryRevision}}`` / ``{{stableRevision}}``.
  Ramp's Prometheus ``address`` is literal: ``{{args.x}}`` in Argo's is replaced by the
  value a Rollout gives (or the template's default), or warned on.
- Everything else (Services, Deployments, ...) is passed through unchanged.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ramp.cli.convert_checks import Warn, bool_literals, convert_check, finish_check
from ramp.cli.convert_expr import argo_duration, convert_condition, ident
from ramp.cli.convert_live import NotConvertible, rollout_for_deployment
from ramp.cli.convert_routes import header_route_step, traffic_routing

ARGO_GROUP = "argoproj.io"
RAMP_API = "ramp.dev/v1alpha1"
Obj = dict[str, Any]

_CANARY_KEYS = {"maxSurge", "maxUnavailable", "stableService", "canaryService"}
_BLUE_GREEN_KEYS = {
    "activeService",
    "previewService",
    "previewReplicaCount",
    "autoPromotionEnabled",
    "autoPromotionSeconds",
    "scaleDownDelaySeconds",
    "abortScaleDownDelaySeconds",
}
_SPEC_KEYS = {
    "replicas",
    "selector",
    "template",
    "paused",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
}
_METRIC_KEYS = {
    "name",
    "interval",
    "count",
    "initialDelay",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
}
_HASH_PLACEHOLDER = {"Latest": "{{canaryRevision}}", "Stable": "{{stableRevision}}"}
_FIELD_PLACEHOLDER = {"metadata.name": "{{rollout}}", "metadata.namespace": "{{namespace}}"}
_ARG = re.compile(r"\{\{\s*args\.([^}\s]+)\s*\}\}")


@dataclass
class Conversion:
    """The converted documents and a warning for each field that did not carry over."""

    documents: list[Obj] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Lossless changes worth knowing (renamed arguments, ...)."""

    @property
    def lossless(self) -> bool:
        return not self.warnings


class _Converter:
    def __init__(self, docs: Iterable[Any]) -> None:
        self.docs = [d for d in docs if isinstance(d, dict)]
        self.out = Conversion()
        self.hash_args: dict[str, dict[str, str]] = {}
        """Template name → {argument: placeholder} for podTemplateHashValue arguments."""
        self.values: dict[str, dict[str, str]] = {}
        """Template name → {argument: value} the Rollouts give (the first binding)."""
        self.cluster_ns: dict[str, str] = {}
        """ClusterAnalysisTemplate name → namespace of the first Rollout that uses it."""
        self.namespace: str | None = None

    def warn(self, where: str, path: str, message: str) -> None:
        self.out.warnings.append(f"{where}: {path}: {message}")

    def run(self) -> Conversion:
        rollouts = [d for d in self.docs if _is_argo(d, "Rollout")]
        converted = {id(d): self.rollout(d) for d in rollouts}
        for doc in self.docs:
            if id(doc) in converted:
                self.out.documents.append(converted[id(doc)])
            elif _is_argo(doc, "AnalysisTemplate", "ClusterAnalysisTemplate"):
                self.out.documents.append(self.template(doc))
            elif str(doc.get("apiVersion", "")).startswith(f"{ARGO_GROUP}/"):
                where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
                self.warn(where, "kind", f"{doc.get('kind')} has no Ramp equivalent: dropped")
            else:
                self.out.documents.append(doc)
        return self.out

    # -- Rollouts ------------------------------------------------------------------------

    def rollout(self, doc: Obj) -> Obj:
        meta = doc.get("metadata") or {}
        where = f"Rollout/{meta.get('name')}"
        self.namespace = meta.get("namespace")
        spec = doc.get("spec") or {}
        new: Obj = {k: copy.deepcopy(spec[k]) for k in sorted(_SPEC_KEYS) if k in spec}
        for key in sorted(set(spec) - _SPEC_KEYS - {"strategy", "workloadRef"}):
            self.warn(where, f"spec.{key}", "no Ramp equivalent: dropped")
        if "workloadRef" in spec:
            new["workloadRef"] = self.workload_ref(where, spec["workloadRef"])
        strategy = spec.get("strategy") or {}
        if "canary" in strategy:
            new["strategy"] = {"canary": self.canary(where, strategy["canary"] or {})}
        elif "blueGreen" in strategy:
            new["strategy"] = {"blueGreen": self.blue_green(where, strategy["blueGreen"] or {})}
        else:
            self.warn(where, "spec.strategy", "no strategy: a canary without steps is used")
            new["strategy"] = {"canary": {}}
        out_meta = {k: copy.deepcopy(meta[k]) for k in ("name", "namespace") if k in meta}
        for key in ("labels", "annotations"):
            if meta.get(key):
                out_meta[key] = copy.deepcopy(meta[key])
        return {"apiVersion": RAMP_API, "kind": "Rollout", "metadata": out_meta, "spec": new}

    def workload_ref(self, where: str, ref: Obj) -> Obj:
        kind = ref.get("kind")
        if kind != "Deployment":
            self.warn(where, "spec.workloadRef.kind", f"{kind} is not supported: only Deployment")
        scale_down = ref.get("scaleDown") or "never"
        out = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": ref.get("name"),
            "scaleDown": scale_down,
        }
        return out

    def canary(self, where: str, canary: Obj) -> Obj:
        out: Obj = {k: canary[k] for k in sorted(_CANARY_KEYS) if k in canary}
        for key in sorted(set(canary) - _CANARY_KEYS - {"steps", "analysis", "trafficRouting"}):
            self.warn(where, f"spec.strategy.canary.{key}", "no Ramp equivalent: dropped")
        routes = traffic_routing(
            canary.get("trafficRouting") or {}, lambda p, m: self.warn(where, p, m)
        )
        if routes:
            out["httpRoutes"] = routes
        self.routed = bool(routes)
        steps = []
        for i, step in enumerate(canary.get("steps") or []):
            converted = self.step(where, i, step or {})
            if converted is not None:
                steps.append(converted)
        if steps:
            out["steps"] = steps
        if canary.get("analysis"):
            path = "spec.strategy.canary.analysis"
            analysis = self.analysis_ref(where, path, canary["analysis"], {"startingStep"})
            if "startingStep" in canary["analysis"]:
                analysis["startingStep"] = canary["analysis"]["startingStep"]
            out["analysis"] = analysis
        return out

    def step(self, where: str, i: int, step: Obj) -> Obj | None:
        path = f"spec.strategy.canary.steps[{i}]"
        if "setWeight" in step:
            return {"setWeight": step["setWeight"]}
        if "pause" in step:
            pause = step["pause"] or {}
            return {
                "pause": {"duration": argo_duration(pause["duration"])}
                if "duration" in pause
                else {}
            }
        if "analysis" in step:
            return {"analysis": self.analysis_ref(where, f"{path}.analysis", step["analysis"])}
        if "setHeaderRoute" in step and getattr(self, "routed", False):
            return header_route_step(step["setHeaderRoute"] or {})
        kind = next(iter(step), "?")
        self.warn(where, f"{path}.{kind}", "no Ramp equivalent: step dropped")
        return None

    def blue_green(self, where: str, bg: Obj) -> Obj:
        out: Obj = {k: bg[k] for k in sorted(_BLUE_GREEN_KEYS) if k in bg}
        for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
            if bg.get(key):
                out[key] = self.analysis_ref(where, f"spec.strategy.blueGreen.{key}", bg[key])
        rest = set(bg) - _BLUE_GREEN_KEYS - {"prePromotionAnalysis", "postPromotionAnalysis"}
        for key in sorted(rest):
            self.warn(where, f"spec.strategy.blueGreen.{key}", "no Ramp equivalent: dropped")
        return out

    def analysis_ref(
        self, where: str, path: str, ref: Obj, also: frozenset[str] | set[str] = frozenset()
    ) -> Obj:
        templates = []
        hashes: dict[str, str] = {}
        args = []
        for j, arg in enumerate(ref.get("args") or []):
            name = str(arg.get("name"))
            source = arg.get("valueFrom") or {}
            if "value" in arg:
                args.append({"name": ident(name), "value": str(arg["value"])})
            elif source.get("podTemplateHashValue") in _HASH_PLACEHOLDER:
                hashes[name] = _HASH_PLACEHOLDER[source["podTemplateHashValue"]]
            elif (source.get("fieldRef") or {}).get("fieldPath") in _FIELD_PLACEHOLDER:
                hashes[name] = _FIELD_PLACEHOLDER[source["fieldRef"]["fieldPath"]]
            else:
                self.warn(where, f"{path}.args[{j}]", f"argument {name}: source not supported")
        for j, t in enumerate(ref.get("templates") or []):
            name = t.get("templateName")
            if t.get("clusterScope"):
                if self.namespace:
                    self.cluster_ns.setdefault(str(name), self.namespace)
                self.out.notes.append(
                    f"{where}: {path}.templates[{j}]: ClusterAnalysisTemplate {name} is "
                    "converted to a namespaced AnalysisTemplate"
                )
            templates.append({"templateName": name})
            for arg in ref.get("args") or []:
                if "value" in arg:
                    self.values.setdefault(str(name), {}).setdefault(
                        str(arg.get("name")), str(arg["value"])
                    )
            if hashes:
                known = self.hash_args.setdefault(str(name), {})
                for arg, placeholder in hashes.items():
                    if known.get(arg, placeholder) != placeholder:
                        self.warn(
                            where,
                            f"{path}.args",
                            f"argument {arg} of template {name} is bound differently "
                            "elsewhere: the first binding is used",
                        )
                    known.setdefault(arg, placeholder)
        for key in sorted(set(ref) - {"templates", "args"} - set(also)):
            self.warn(where, f"{path}.{key}", "no Ramp equivalent: dropped")
        out: Obj = {"templates": templates}
        if args:
            out["args"] = args
        return out

    # -- AnalysisTemplates -----------------------------------------------------------------

    def template(self, doc: Obj) -> Obj:
        meta = doc.get("metadata") or {}
        name = str(meta.get("name"))
        where = f"{doc.get('kind')}/{name}"
        spec = doc.get("spec") or {}
        bound = self.hash_args.get(name, {})
        args = [
            {"name": ident(str(a["name"])), **({"value": str(a["value"])} if "value" in a else {})}
            for a in spec.get("args") or []
            if a.get("name") not in bound
        ]
        for j, a in enumerate(spec.get("args") or []):
            if "valueFrom" in a:
                self.warn(
                    where, f"spec.args[{j}].valueFrom", "secret or field values not supported"
                )
        metrics = []
        for i, metric in enumerate(spec.get("metrics") or []):
            values = {
                **{str(a["name"]): str(a["value"]) for a in spec.get("args") or [] if "value" in a},
                **self.values.get(name, {}),
            }
            converted = self.metric(where, f"spec.metrics[{i}]", metric, bound, values)
            if converted is not None:
                metrics.append(converted)
        for key in sorted(set(spec) - {"args", "metrics"}):
            self.warn(where, f"spec.{key}", "no Ramp equivalent: dropped")
        out_meta = {"name": name}
        namespace = meta.get("namespace") or self.cluster_ns.get(name)
        if namespace:
            out_meta["namespace"] = namespace
        new_spec: Obj = {"metrics": metrics}
        if args:
            new_spec = {"args": args, **new_spec}
        return {
            "apiVersion": RAMP_API,
            "kind": "AnalysisTemplate",
            "metadata": out_meta,
            "spec": new_spec,
        }

    def metric(
        self,
        where: str,
        path: str,
        metric: Obj,
        bound: Mapping[str, str],
        values: Mapping[str, str],
    ) -> Obj | None:
        provider = metric.get("provider") or {}
        prom = provider.get("prometheus")
        check = None if prom else convert_check(
            provider, lambda at, message: self.warn(where, f"{path}.provider.{at}", message)
        )  # fmt: skip
        if not prom and check is None:
            kind = next(iter(provider), "none")
            self.warn(
                where,
                f"{path}.provider.{kind}",
                "only Prometheus, job and web are supported: metric dropped",
            )
            return None
        out: Obj = {}
        for key in (
            "name",
            "interval",
            "count",
            "initialDelay",
            "failureLimit",
            "inconclusiveLimit",
            "consecutiveErrorLimit",
        ):
            if key in metric:
                value = metric[key]
                if key in ("count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"):
                    if isinstance(value, str) and not value.isdigit():
                        self.warn(where, f"{path}.{key}", f"{value!r} is not a number: dropped")
                        continue
                    value = int(value)
                out[key] = value
        if "interval" in metric and "count" not in metric:
            self.warn(where, f"{path}.count", "absent: Argo measures until stopped, Ramp once")
        for key in ("successCondition", "failureCondition"):
            if key in metric and check is not None and "job" in check:
                self.warn(where, f"{path}.{key}", "a job check's verdict is how it ended: dropped")
            elif key in metric:
                cel, problems = convert_condition(str(metric[key]))
                out[key] = cel if check is None else bool_literals(cel)
                for problem in problems:
                    self.warn(where, f"{path}.{key}", problem)
        if check is not None:
            warn_at: Warn = lambda at, message: self.warn(where, f"{path}.{at}", message)  # noqa: E731
            return finish_check(out, check, set(metric) - _METRIC_KEYS, warn_at)
        assert prom  # a metric without a check is a Prometheus metric here
        query = str(prom.get("query", ""))
        for arg, placeholder in bound.items():
            query = query.replace("{{args." + arg + "}}", placeholder)
        query = re.sub(
            r"\{\{\s*args\.([^}\s]+)\s*\}\}", lambda m: "{{args." + ident(m[1]) + "}}", query
        )
        if "pod_template_hash" in query or "pod-template-hash" in query:
            self.warn(
                where,
                f"{path}.provider.prometheus.query",
                "selects on the pod-template-hash label: Ramp's revision is the pod label "
                "ramp.dev/revision (relabel it to `revision`)",
            )
        source: Obj = {"address": self.address(where, path, prom.get("address"), values)}
        source["query"] = query
        if "timeout" in prom:
            source["timeout"] = argo_duration(prom["timeout"])
        for key in sorted(set(prom) - {"address", "query", "timeout"}):
            self.warn(
                where,
                f"{path}.provider.prometheus.{key}",
                "not supported (credentials come from the operator's configuration)",
            )
        out["prometheus"] = source
        for key in sorted(
            set(metric) - _METRIC_KEYS - {"provider", "successCondition", "failureCondition"}
        ):
            self.warn(where, f"{path}.{key}", "no Ramp equivalent: dropped")
        return out

    def address(self, where: str, path: str, address: Any, values: Mapping[str, str]) -> Any:
        """Ramp's address is literal: ``{{args.x}}`` in Argo's is replaced by the value
        the Rollout (or the template's default) gives, or warned on when there is none."""
        text = str(address or "")
        if "{{" not in text:
            return address
        out = _ARG.sub(lambda m: values.get(m[1], m[0]), text)
        at = f"{path}.provider.prometheus.address"
        if "{{" in out:
            self.warn(where, at, f"{text}: placeholders in the address are not supported")
        else:
            self.out.notes.append(f"{where}: {at}: {text} resolved to {out}")
        return out


def _is_argo(doc: Mapping[str, Any], *kinds: str) -> bool:
    return str(doc.get("apiVersion", "")).startswith(f"{ARGO_GROUP}/") and doc.get("kind") in kinds


def convert_documents(docs: Iterable[Any]) -> Conversion:
    """Convert the Argo Rollouts documents among ``docs`` (others pass through)."""
    return _Converter(docs).run()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (queries) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(documents: Iterable[Any]) -> str:
    """YAML documents as ``convert`` prints them."""
    return yaml.dump_all(list(documents), Dumper=_Dumper, sort_keys=False)


__all__ = [
    "Conversion",
    "NotConvertible",
    "convert_condition",
    "convert_documents",
    "dump",
    "rollout_for_deployment",
]
