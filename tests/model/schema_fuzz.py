"""Specs generated from the CRDs' own OpenAPI schema, kept when the schema and its CEL rules
accept them, and driven through the REAL planner in every phase (issue 19).

:func:`generate` walks the schema in ``crds/`` (names up to the API's limits, durations up
to what the pattern allows, integers at their bounds, every optional field now and then),
:func:`accepted` is what the API server would say (structural schema and every
``x-kubernetes-validations`` rule, evaluated with a CEL engine), and :func:`drive` runs
``plan()`` through a small cluster that does what the plan says: the first rollout, a new
template, promote, abort, retry, scale to zero and back, a rollback, hours passing. Every
plan is checked: it returns, its status validates against the status schema, and every
name and label value the shell derives from it is valid.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import random
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import cel
from pydantic import ValidationError

from ramp.api.analysis import AnalysisTemplateSpec, Measurement, Metric, Verdict
from ramp.api.durations import MAX_DURATION
from ramp.api.labels import revision_hash
from ramp.api.rollout import Rollout
from ramp.core.model import Child, HistoryEntry, Observed, Plan
from ramp.core.names import (
    MAX_CHILD_NAME,
    child_name,
    event_name,
    label_value_problem,
    name_problem,
    rollout_label,
)
from ramp.core.plan import plan, runs_in_play
from ramp.core.resolve import AnalysisSpecError, ResolvedAnalysis, resolve_analysis
from ramp.core.verdicts import format_time
from ramp.crdgen import crds
from ramp.shell.controller.controller import validation_problem

from .crd_schema import schema_errors, status_schema
from .sim import T0
from .sim_measure import measure_due_now

UID = "uid-fuzz"
DURATION_BOUND = f"must be at most {MAX_DURATION} (a year)"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
TEXT = "".join(random.Random(0).choices(string.ascii_letters + " .-_/%{}", k=20_000))
"""Free text is cut from this (drawing thousands of characters one by one is slow)."""


@functools.cache
def spec_schema(kind: str) -> dict[str, Any]:
    """``spec`` of the Rollout (``rollouts``) or AnalysisTemplate CRD."""
    crd = crds()[f"{kind}.ramp.dev.yaml"]
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(root["properties"]["spec"])


# -- generation --------------------------------------------------------------------------


def dns_label(rng: random.Random, size: int) -> str:
    alnum = string.ascii_lowercase + string.digits
    if size <= 2:
        return "".join(rng.choices(alnum, k=max(size, 1)))
    middle = "".join(rng.choices(alnum + "-", k=size - 2))
    return rng.choice(alnum) + middle + rng.choice(alnum)


def subdomain(rng: random.Random, size: int) -> str:
    """A DNS-1123 subdomain of exactly ``size`` characters (labels of up to 63)."""
    parts: list[str] = []
    left = size
    while left > 0:
        take = min(left, rng.randint(1, 63))
        if left - take == 1:  # a lone dot would be left over
            take = left if take < 63 else take - 1
        parts.append(dns_label(rng, take))
        left -= take + 1
    return ".".join(parts)[:size].rstrip(".-") or "a"


def sizes(rng: random.Random, limit: int) -> int:
    """A length biased to the edges: 1, the limit, just below, or anything."""
    return rng.choice([1, limit, limit - 1, rng.randint(1, limit), rng.randint(1, 12)])


def duration(rng: random.Random) -> str:
    return rng.choice(
        [
            "0s",
            "1s",
            "500ms",
            "0.5s",
            "30s",
            "2m",
            "1h30m",
            "8760h",
            "8759h59m59s",
            "8760h0.001s",
            "99999999999h",
            "9" * 31 + "h",
            "1" + "0" * 30 + "s",
            "0.0000001ms",
            f"{rng.randint(0, 10**6)}{rng.choice(['ms', 's', 'm', 'h'])}",
        ]
    )


def gen_string(rng: random.Random, schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return str(rng.choice(schema["enum"]))
    limit = int(schema.get("maxLength", 64))
    pattern = schema.get("pattern")
    if pattern == DURATION:
        return duration(rng)
    if pattern == DNS_LABEL:
        return dns_label(rng, sizes(rng, min(limit, 63)))
    if pattern == SUBDOMAIN:
        return subdomain(rng, sizes(rng, limit))
    if pattern and pattern.startswith("^(([A-Za-z0-9]"):
        return rng.choice(["", "web", "v1.2_x", "a" * 63, dns_label(rng, sizes(rng, 63))])
    if pattern and pattern.startswith("^https?"):
        return rng.choice(["http://prometheus:9090", "https://p.example/api", "http://h"])
    if pattern and pattern.startswith("^[A-Za-z_]"):
        return rng.choice(["a", "service", "x_1", "Z" * min(limit, 63)])
    if pattern and pattern.startswith("^[A-Za-z0-9]"):
        return rng.choice(["m", "error-rate", "a.b_c", "M" * 63])
    size = rng.choice([0, 1, 5, limit]) if limit < 10_000 else rng.choice([1, 20, 300])
    size = max(size, int(schema.get("minLength", 0)))
    start = rng.randrange(len(TEXT) - size) if size < len(TEXT) else 0
    return TEXT[start : start + size]


def gen_int(rng: random.Random, schema: Mapping[str, Any]) -> int:
    low = int(schema.get("minimum", -(2**31)))
    high = int(schema.get("maximum", 2**31 - 1))
    return rng.choice([low, high, max(low, 0), min(max(low, 1), high), rng.randint(low, high)])


def generate(rng: random.Random, schema: Mapping[str, Any], depth: int = 0) -> Any:
    """A value the schema's structure allows (most of the time: the CEL rules decide)."""
    if schema.get("x-kubernetes-int-or-string"):
        if rng.random() < 0.5:
            return rng.choice([0, 1, 2, 5, 10000])
        return rng.choice(["0%", "25%", "100%", "150%", "999%"])
    kind = schema.get("type")
    if kind == "string":
        return gen_string(rng, schema)
    if kind == "integer":
        return gen_int(rng, schema)
    if kind == "number":
        return rng.choice([0.0, 0.5, 1.0, 100.0, 1e300])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", 4)), low + 3 if depth > 3 else low + 5)
        return [
            generate(rng, schema.get("items", {}), depth + 1) for _ in range(rng.randint(low, high))
        ]
    if kind == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        required = set(schema.get("required", []))
        for key, sub in (schema.get("properties") or {}).items():
            if key in required or rng.random() < (0.5 if depth < 4 else 0.25):
                out[key] = generate(rng, sub, depth + 1)
        if "additionalProperties" in schema:
            for _ in range(rng.randint(0, 3)):
                out[rng.choice(["app", "tier", "x", "team"])] = generate(
                    rng, schema["additionalProperties"], depth + 1
                )
        if schema.get("x-kubernetes-preserve-unknown-fields") and "containers" in out:
            out["containers"] = [{"name": "app", "image": f"app:{rng.randint(1, 3)}"}]
        return out
    return None


def repair(rng: random.Random, spec: dict[str, Any]) -> dict[str, Any]:
    """Make most generated specs pass the cross-field CEL rules (a few still fail them,
    which is fine: those are dropped as the API server would drop them)."""
    strategy = spec.setdefault("strategy", {})
    if "canary" in strategy and "blueGreen" in strategy:
        del strategy[rng.choice(["canary", "blueGreen"])]
    if not strategy:
        strategy["canary"] = {}
    if rng.random() < 0.9 or "workloadRef" not in spec:
        spec.pop("workloadRef", None)
        spec.setdefault(
            "template", {"metadata": {}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
        )
    else:
        spec.pop("template", None)
    selector = spec.setdefault("selector", {})
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        selector["matchLabels"] = {"app": "web"}
    if "template" in spec:
        labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        labels.update(selector.get("matchLabels") or {})
    for step in (strategy.get("canary") or {}).get("steps") or []:
        present = [k for k in ("setWeight", "pause", "analysis") if k in step]
        keep = rng.choice(present) if present else "setWeight"
        for k in present:
            if k != keep:
                del step[k]
        step.setdefault("setWeight", 50) if keep == "setWeight" else None
    for ref in analysis_refs(spec):
        fix_analysis(rng, ref)
    bg = strategy.get("blueGreen")
    if bg is not None and "previewReplicaCount" in bg and "replicas" in spec:
        bg["previewReplicaCount"] = max(1, min(bg["previewReplicaCount"], spec["replicas"] or 1))
    return spec


def analysis_refs(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    strategy = spec.get("strategy") or {}
    canary = strategy.get("canary") or {}
    for step in canary.get("steps") or []:
        if "analysis" in step:
            yield step["analysis"]
    if "analysis" in canary:
        yield canary["analysis"]
    bg = strategy.get("blueGreen") or {}
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        if key in bg:
            yield bg[key]


def fix_analysis(rng: random.Random, ref: dict[str, Any]) -> None:
    if not ref.get("templates") and not ref.get("metrics"):
        ref["templates"] = [{"templateName": "t0"}]
    for tref in ref.get("templates") or []:
        if rng.random() < 0.8:
            tref["templateName"] = rng.choice(["t0", "t1"])
    fix_metrics(rng, ref)


def fix_metrics(rng: random.Random, spec: dict[str, Any]) -> None:
    for i, metric in enumerate(spec.get("metrics") or []):
        metric["name"] = f"{metric.get('name', 'm')[:50]}{i}"
        if ("prometheus" in metric) == ("compare" in metric):
            metric.pop(rng.choice(["prometheus", "compare"]), None)
            if "prometheus" not in metric and "compare" not in metric:
                metric["prometheus"] = {"address": "http://p:9090", "query": "up"}
        if "compare" in metric:
            metric.pop("successCondition", None)
            metric.pop("failureCondition", None)
        elif "successCondition" not in metric and "failureCondition" not in metric:
            metric["successCondition"] = "result < 1.0"
    for i, arg in enumerate(spec.get("args") or []):
        arg["name"] = f"{arg.get('name', 'a')[:50]}{i}"


# -- what the API server accepts -----------------------------------------------------------


@functools.cache
def _program(rule: str) -> Any:
    return cel.compile(rule)


def cel_errors(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    """The ``x-kubernetes-validations`` rules (create: no ``oldSelf`` rules) ``value``
    breaks, at every level; a rule that errors refuses too (as the API server does)."""
    errors: list[str] = []
    rules = [r for r in schema.get("x-kubernetes-validations") or [] if "oldSelf" not in r["rule"]]
    context = cel.Context(variables={"self": value}) if rules else None
    for rule in rules:
        try:
            ok = _program(rule["rule"]).execute(context)
        except Exception as exc:  # an evaluation error refuses the object too
            ok = f"error {exc}"
        if ok is not True:
            errors.append(f"{path}: {rule['message']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, item in value.items():
            sub = props.get(key) or schema.get("additionalProperties")
            if isinstance(sub, Mapping):
                errors += cel_errors(item, sub, f"{path}.{key}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            errors += cel_errors(item, schema.get("items") or {}, f"{path}[{i}]")
    return errors


def accepted(spec: Any, kind: str, stored_before: bool = False) -> list[str]:
    """Why the API server would refuse ``spec`` ([] when it would accept it).
    ``stored_before``: as a CRD without the duration bound did (issue 19, class 6), for
    objects written before the bound came: the planner must stay total on those too."""
    schema = spec_schema(kind)
    errors = schema_errors(spec, schema, "spec")
    errors = errors or cel_errors(spec, schema, "spec")
    if stored_before:
        errors = [e for e in errors if not e.endswith(DURATION_BOUND)]
    return errors


# -- driving the planner -------------------------------------------------------------------


class Broken(AssertionError):
    """plan() raised, or wrote something the API server would refuse."""


@dataclass
class Drive:
    """A tiny cluster that does what each plan says (every child ready at once)."""

    name: str
    spec: dict[str, Any]
    templates: dict[str, AnalysisTemplateSpec]
    verdict: Verdict = Verdict.PASS
    now: Any = T0
    generation: int = 1
    annotations: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    children: dict[str, Child] = field(default_factory=dict)
    history: dict[str, HistoryEntry] = field(default_factory=dict)
    plans: int = 0
    unparsable: int = 0
    last_problem: str | None = None
    """What the shell's InvalidSpec says of the last spec the models could not read."""

    def body(self) -> dict[str, Any]:
        return {
            "apiVersion": "ramp.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": self.name,
                "namespace": "ns",
                "uid": UID,
                "generation": self.generation,
                "annotations": dict(self.annotations),
            },
            "spec": self.spec,
            **({"status": self.status} if self.status else {}),
        }

    def measure(self, rollout: Rollout) -> tuple[Rollout, dict[str, ResolvedAnalysis | str]]:
        runs = runs_in_play(rollout)
        if not runs:
            return rollout, {}
        resolved: dict[str, ResolvedAnalysis | str] = {}
        for name, ref in runs.items():
            try:
                resolved[name] = resolve_analysis(ref, self.templates)
            except AnalysisSpecError as exc:
                resolved[name] = str(exc)
        return measure_due_now(rollout, resolved, self.now, self.measurement), resolved

    def measurement(self, metric: Metric, analysis: str, revision: str) -> Measurement:
        return Measurement(
            metric=metric.name,
            verdict=self.verdict,
            time=format_time(self.now),
            value="1",
            message="fuzz",
            revision=revision,
            analysis=analysis,
        )

    def step(self) -> Plan | None:
        body = self.body()
        try:
            rollout = Rollout.model_validate(body)
        except ValidationError as exc:
            # The shell's path (Controller._report_unparsable): InvalidSpec naming the field.
            self.last_problem = validation_problem(exc)
            if not exc.errors()[0]["loc"]:
                raise Broken(f"unparsable without a field: {self.last_problem}") from exc
            self.unparsable += 1
            return None
        rollout, resolved = self.measure(rollout)
        template = self.spec.get("template") or {}
        observed = Observed(
            rollout=rollout,
            template=template,
            generation=self.generation,
            annotations=dict(self.annotations),
            children=tuple(self.children.values()),
            uid=UID,
            history=tuple(self.history.values()),
            services={},
            endpoints={},
            analysis=resolved,
        )
        try:
            result = plan(observed, self.now)
        except Exception as exc:
            raise Broken(f"plan() raised {type(exc).__name__}: {exc}") from exc
        self.plans += 1
        self.check(result)
        self.apply(result)
        return result

    def check(self, result: Plan) -> None:
        status = result.status.to_k8s()
        errors = schema_errors(status, status_schema())
        if errors:
            raise Broken(f"status refused by the schema: {errors[:3]}")
        names = [child_name(self.name, r) for r in result.creates]
        names += [child_name(self.name, w.revision) for w in result.history]
        names.append(event_name(self.name, "0123456789ab"))
        for name in names:
            problem = name_problem(name, MAX_CHILD_NAME if name in names[:-1] else 253)
            if problem:
                raise Broken(f"derived name {name!r}: {problem}")
        values = [rollout_label(self.name), *result.creates, *(w.revision for w in result.history)]
        values += [v for pin in result.services for v in pin.selector.values()]
        for value in values:
            problem = label_value_problem(value)
            if problem:
                raise Broken(f"derived label value {value!r}: {problem}")

    def apply(self, result: Plan) -> None:
        for write in result.history:
            old = self.history.get(write.revision)
            marks = {"promoted_at": None, "aborted": None}
            if old is not None:
                marks = {"promoted_at": old.promoted_at, "aborted": old.aborted}
            for key, value in write.annotations.items():
                marks["promoted_at" if key.endswith("promoted-at") else "aborted"] = value
            self.history[write.revision] = HistoryEntry(
                revision=write.revision,
                number=old.number if old else len(self.history) + 1,
                template=write.template or (old.template if old else None),
                **marks,
            )
        for revision in result.delete_history:
            self.history.pop(revision, None)
        for revision in result.creates:
            self.children[revision] = self.child(revision, (result.replicas or {}).get(revision, 0))
        for revision, replicas in (result.replicas or {}).items():
            if revision in self.children:
                self.children[revision] = self.child(revision, replicas)
        for name in result.delete:
            self.children = {r: c for r, c in self.children.items() if c.name != name}
        if result.write_status:
            self.status = result.status.to_k8s()
        wait = result.requeue_after if result.requeue_after is not None else 60.0
        self.now += timedelta(seconds=min(max(wait, 1.0), 3600.0))

    def child(self, revision: str, replicas: int) -> Child:
        return Child(
            name=child_name(self.name, revision),
            revision=revision,
            role=None,
            replicas=replicas,
            ready=replicas,
            current=replicas,
            settled=True,
            created=format_time(self.now),
            owner=UID,
        )

    def token(self, verb: str) -> None:
        self.annotations[f"ramp.dev/{verb}"] = f"t{self.plans}"

    def change(self, **spec: Any) -> None:
        self.spec = {**copy.deepcopy(self.spec), **spec}
        self.generation += 1


SCRIPT = [
    "", "", "promote", "", "promote-full", "", "hours", "abort", "", "retry", "",
    "zero", "", "back", "", "rollback", "", "days",
]  # fmt: skip
"""After the first rollout and a new template: what happens next (``make fuzz``)."""
SHORT_SCRIPTS = [
    ["promote", "hours"],
    ["abort", "retry"],
    ["zero", "back"],
    ["promote-full", "rollback"],
    ["days", "abort"],
    ["hours", "promote"],
]
"""CI's budget: each spec lives through one of these (in turn), not the whole script."""


def drive(
    rng: random.Random,
    name: str,
    spec: dict[str, Any],
    templates: Mapping[str, Any],
    script: list[str] = SCRIPT,
) -> Drive:
    """Every phase: first rollout, a new template walked with promotes, an abort and a
    retry, zero replicas and back, hours passing, a rollback; raises :class:`Broken`."""
    specs = {}
    for tname, tspec in templates.items():
        with contextlib.suppress(ValidationError):  # else reported by name (Gates.resolve)
            specs[tname] = AnalysisTemplateSpec.model_validate(tspec)
    d = Drive(name=name, spec=spec, templates=specs, verdict=rng.choice(list(Verdict)))
    for _ in range(2 if script is SCRIPT else 1):
        d.step()
    if "template" in spec:
        new = copy.deepcopy(spec["template"])
        new.setdefault("spec", {}).setdefault("containers", [{}])[0]["image"] = "app:new"
        assert revision_hash(new) != revision_hash(spec["template"])
        d.change(template=new)
    d.step()
    for what in script:
        if what in ("promote", "promote-full", "abort", "retry", "rollback"):
            d.token(what)
        elif what == "zero":
            d.change(replicas=0)
        elif what == "back":
            d.change(replicas=spec.get("replicas", 1))
        elif what == "hours":
            d.now += timedelta(hours=rng.choice([1, 30, 9000]))
        elif what == "days":
            d.now += timedelta(days=rng.choice([2, 400, 3000]))
        d.step()
    return d


def rollout_name(rng: random.Random) -> str:
    return subdomain(rng, rng.choice([1, 3, 46, 47, 48, 52, 58, 63, 64, 200, 242, 252, 253]))


Case = tuple[str, dict[str, Any], dict[str, Any], list[str]]


def specs(rng: random.Random, stored_before: float = 0.1) -> Iterator[Case]:
    """(Rollout name, spec, AnalysisTemplates by name, why refused) — refused ones too;
    a share ``stored_before`` judged by the CRD before the duration bound."""
    while True:
        spec = repair(rng, generate(rng, spec_schema("rollouts")))
        old = rng.random() < stored_before
        templates = {}
        for tname in ("t0", "t1") if any(analysis_refs(spec)) else ():
            tspec = generate(rng, spec_schema("analysistemplates"))
            fix_metrics(rng, tspec)
            if not accepted(tspec, "analysistemplates", old):
                templates[tname] = tspec
        yield rollout_name(rng), spec, templates, accepted(spec, "rollouts", old)
