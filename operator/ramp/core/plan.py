"""The step planner: from a Rollout and what is observed, decide what to do next.

``plan(observed, now)`` is pure: it reads the Rollout (spec, status, request tokens) and
the observed child Deployments and returns a :class:`Plan` — the replicas each revision's
Deployment should have, the status to write, the Events to emit and when to look again.
It is level-based: given the same inputs it returns the same plan, and applying a plan
and planning again changes nothing more.

The reconcile is a straight sequence that returns early (see :func:`plan`):
tokens → spec checks → stable → rollback → canary identity → abort → drain → paused →
steps → promotion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ramp.api.analysis import AnalysisRef
from ramp.api.rollout import (
    Condition,
    HandledTokens,
    Phase,
    Rollout,
    RolloutSpec,
    RolloutStatus,
    Step,
    Weights,
)
from ramp.core.durations import parse_duration
from ramp.core.split import Limits, Side, Split, next_replicas, split_replicas

PREFIX = "ramp.dev"
TOKEN_VERBS = ("promote", "promote-full", "abort", "retry")
REVISION_LABEL = f"{PREFIX}/revision"
ROLLOUT_LABEL = f"{PREFIX}/rollout"
ROLE_LABEL = f"{PREFIX}/role"
TEMPLATE_ANNOTATION = f"{PREFIX}/template"
"""On each child Deployment: the Rollout's pod template exactly as written (JSON), so that
an undo can restore it byte for byte (the Deployment's own copy gets API defaults)."""

Role = Literal["stable", "canary"]


def revision_hash(template: Mapping[str, Any]) -> str:
    """A short, stable hash of a pod template: the revision's name.

    Key order does not matter; any change of value does.

    >>> revision_hash({"spec": {"containers": [{"name": "a", "image": "x:1"}]}})
    '5fd2c6b0bc'
    """
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Child:
    """One observed child Deployment."""

    name: str
    revision: str
    role: str | None
    replicas: int
    """``spec.replicas``."""
    ready: int
    """``status.readyReplicas``."""
    current: int
    """``status.replicas``: pods that exist."""
    settled: bool
    """The Deployment controller has seen the latest spec (observedGeneration)."""
    created: str = ""
    """``metadata.creationTimestamp`` (to keep the newest as history)."""

    @property
    def side(self) -> Side:
        return Side(desired=self.replicas, ready=self.ready)

    @property
    def converged(self) -> bool:
        """All its pods exist, are ready, and no extra pods are left."""
        return self.settled and self.ready >= self.replicas and self.current == self.replicas


@dataclass(frozen=True)
class GateResult:
    """The state of an analysis gate, computed from the measurements in the status."""

    outcome: Literal["Running", "Passed", "Failed", "Inconclusive", "Error"]
    message: str
    next_check_in: float | None = None
    abort: bool = False
    """For Inconclusive/Error: the metric's policy asks to abort instead of pausing."""


GateFn = Callable[[str, AnalysisRef], GateResult]
"""``gate(run, ref)``: the state of analysis run ``run`` (``step-N`` for the N-th step,
``background``) computed from the counters in the status; ``ref`` says what it measures."""


@dataclass(frozen=True)
class Observed:
    """Everything :func:`plan` needs, read by the shell."""

    rollout: Rollout
    template: Mapping[str, Any]
    """``spec.template`` exactly as stored (hashed and copied into the canary)."""
    generation: int
    annotations: Mapping[str, str]
    children: tuple[Child, ...]
    spec_problem: str | None = None
    """A problem the shell found (failed to parse, child rejected by the API server)."""
    gate: GateFn | None = None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the Rollout."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Plan:
    """What the shell should do. ``replicas`` is None when children must be left alone."""

    status: RolloutStatus
    replicas: dict[str, int] | None = None
    """Desired ``spec.replicas`` per revision (each live child; absent = leave)."""
    roles: dict[str, Role] = field(default_factory=dict)
    create: str | None = None
    """Revision to create from ``Observed.template`` if its Deployment is absent."""
    delete: list[str] = field(default_factory=list)
    """Names of child Deployments to delete (history beyond the limit)."""
    services: dict[str, str] = field(default_factory=dict)
    """Service name → revision its selector must pin."""
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def step_weight(steps: list[Step], index: int) -> int:
    """The canary weight in force at step ``index``: the last setWeight at or before it.

    Past the last step the weight is 100 (promotion).

    >>> steps = [Step(set_weight=20), Step(pause={}), Step(set_weight=50)]
    >>> [step_weight(steps, i) for i in range(4)]
    [20, 20, 50, 100]
    """
    if index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def describe_step(step: Step) -> str:
    """A short human description of a step."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
    return "analysis"


def selector_string(spec: RolloutSpec) -> str:
    """The Rollout's selector as a label-selector string (scale subresource, HPA)."""
    parts = [f"{k}={v}" for k, v in sorted((spec.selector.match_labels or {}).items())]
    for expr in spec.selector.match_expressions or []:
        values = ",".join(expr.values or [])
        if expr.operator == "In":
            parts.append(f"{expr.key} in ({values})")
        elif expr.operator == "NotIn":
            parts.append(f"{expr.key} notin ({values})")
        elif expr.operator == "Exists":
            parts.append(expr.key)
        else:
            parts.append(f"!{expr.key}")
    return ",".join(parts)


def spec_problems(spec: RolloutSpec, template: Mapping[str, Any]) -> str | None:
    """What the schema cannot check. None when the spec is usable."""
    labels = (template.get("metadata") or {}).get("labels") or {}
    for key in labels:
        if key.startswith(f"{PREFIX}/") and key != "ramp.dev/test-fault":
            return f"spec.template.metadata.labels: {key} is reserved for the operator"
    for expr in spec.selector.match_expressions or []:
        value = labels.get(expr.key)
        ok = {
            "In": value is not None and value in (expr.values or []),
            "NotIn": value not in (expr.values or []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expr.operator]
        if not ok:
            return (
                f"spec.selector.matchExpressions: {expr.key} {expr.operator} "
                f"{expr.values or ''} does not match spec.template.metadata.labels"
            )
    canary = spec.canary
    for name, value in (("maxSurge", canary.surge), ("maxUnavailable", canary.unavailable)):
        if isinstance(value, str) and int(value.rstrip("%")) > 100:
            return f"spec.strategy.canary.{name}: {value} is above 100%"
    for i, step in enumerate(canary.steps):
        if step.pause is not None and step.pause.duration is not None:
            try:
                parse_duration(step.pause.duration)
            except ValueError as exc:
                return f"spec.strategy.canary.steps[{i}].pause.duration: {exc}"
    return None


class _Planner:
    """One planning pass. A class only to share the inputs between the small steps."""

    def __init__(self, obs: Observed, now: datetime) -> None:
        self.obs = obs
        self.now = now
        self.spec = obs.rollout.spec
        old = obs.rollout.status or RolloutStatus()
        self.old = old
        self.st = old.model_copy(deep=True)
        self.events: list[Event] = []
        self.children = {c.revision: c for c in obs.children}
        self.total = self.spec.replicas
        self.limits = Limits.resolve(
            self.total, self.spec.canary.surge, self.spec.canary.unavailable
        )
        self.revision = revision_hash(obs.template)
        self.requeue: float | None = None
        self.tokens = self._new_tokens()
        self.conditions: dict[str, tuple[bool, str, str]] = {}
        self.paused_reason: str | None = None

    # -- helpers -------------------------------------------------------------------

    def _new_tokens(self) -> dict[str, str]:
        handled = self.st.handled_tokens or HandledTokens()
        fresh: dict[str, str] = {}
        for verb in TOKEN_VERBS:
            value = self.obs.annotations.get(f"{PREFIX}/{verb}")
            attr = verb.replace("-", "_")
            if value and value != getattr(handled, attr):
                fresh[verb] = value
                setattr(handled, attr, value)
        if fresh:
            self.st.handled_tokens = handled
        return fresh

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.05)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def child(self, revision: str | None) -> Child | None:
        return self.children.get(revision) if revision else None

    def side(self, revision: str | None) -> Side:
        c = self.child(revision)
        return c.side if c else Side(0, 0)

    def steps(self) -> list[Step]:
        return self.spec.canary.steps

    # -- the sequence ----------------------------------------------------------------

    def run(self) -> Plan:
        st = self.st
        st.observed_generation = self.obs.generation
        st.selector = selector_string(self.spec)
        problem = self.obs.spec_problem or spec_problems(self.spec, self.obs.template)
        if problem:
            return self.invalid(problem)
        self.conditions["InvalidSpec"] = (False, "SpecValid", "")
        self.ignore_tokens_not_applicable()
        self.ensure_stable()
        if self.revision == st.stable_revision:
            return self.steady()
        self.ensure_canary_identity()
        if self.tokens.get("abort") and st.aborted_revision != self.revision:
            self.abort("UserAbort", "aborted by request (ramp.dev/abort)")
        if self.tokens.get("retry"):
            if st.aborted_revision == self.revision:
                self.restart_canary("Retried", "retry requested: canary restarts at step 1")
            elif self.paused_by_analysis():
                st.analysis_runs = None
                self.event("Retried", "retry requested: the paused analysis measures again")
            else:
                self.event("RetryIgnored", "retry requested but the rollout is not aborted")
        if st.aborted_revision == self.revision:
            return self.aborted()
        drain = self.drain_others(stable_target=self.total)
        if drain is not None:
            return drain
        if self.spec.paused:
            return self.held()
        if st.held_by_spec_paused:
            st.held_by_spec_paused = None
            st.step_started_at = _iso(self.now)
            self.event("Resumed", "spec.paused is false: the rollout resumes")
        return self.walk_steps()

    def invalid(self, problem: str) -> Plan:
        old = next((c for c in self.old.conditions or [] if c.type == "InvalidSpec"), None)
        if old is None or old.status != "True" or old.message != problem:
            self.event("InvalidSpec", f"{problem}; the workload is left as it is", warning=True)
        self.conditions["InvalidSpec"] = (True, "InvalidSpec", problem)
        self.st.message = f"invalid spec: {problem}; the workload keeps running as it was"
        return self.finish(None)

    def ignore_tokens_not_applicable(self) -> None:
        """Tokens that make no sense in the current state are recorded and said so."""
        in_progress = self.revision != (self.st.stable_revision or self.revision)
        for verb in ("promote", "promote-full", "abort"):
            if verb in self.tokens and not in_progress:
                self.event(
                    f"{_camel(verb)}Ignored", f"{verb} requested but no rollout is in progress"
                )
                del self.tokens[verb]

    def ensure_stable(self) -> None:
        st = self.st
        if st.stable_revision and st.stable_revision in self.children:
            return
        if st.stable_revision is None:
            adopted = next((c for c in self.obs.children if c.role == "stable"), None)
            st.stable_revision = adopted.revision if adopted else self.revision
            self.event(
                "Initialized",
                f"revision {st.stable_revision} is stable (first revision: no steps)",
            )
            return
        # The stable Deployment is gone: there is nothing left to protect.
        self.event(
            "StableMissing",
            f"the Deployment of stable revision {st.stable_revision} is missing; "
            f"revision {self.revision} becomes stable without steps",
            warning=True,
        )
        st.stable_revision = self.revision
        st.canary_revision = None

    def clear_canary(self) -> None:
        """No canary any more (promoted or rolled back); its measurements stay as the record."""
        st = self.st
        st.canary_revision = None
        st.current_step_index = None
        st.step_started_at = None
        st.analysis_runs = None

    def steady(self) -> Plan:
        """The template is the stable one: steady state, or a rollback."""
        st = self.st
        if st.canary_revision:
            self.event(
                "RolledBack",
                f"template equals stable revision {st.stable_revision}: canary "
                f"{st.canary_revision} removed without steps",
            )
        self.clear_canary()
        st.aborted_revision = None
        st.abort_reason = None
        st.abort_message = None
        st.held_by_spec_paused = None
        drain = self.drain_others(stable_target=self.total)
        if drain is not None:
            return drain
        stable = self.child(st.stable_revision)
        replicas = self.keep_history({st.stable_revision or "": self.total})
        if stable is None or not stable.converged or stable.replicas != self.total:
            ready = stable.ready if stable else 0
            st.message = f"stable revision {st.stable_revision}: {ready}/{self.total} ready"
            self.conditions["Progressing"] = (True, "ScalingStable", st.message)
        else:
            st.message = (
                f"stable revision {st.stable_revision} runs {self.total}/{self.total} ready"
            )
            self.conditions["Progressing"] = (False, "RolloutCompleted", "")
        return self.finish(replicas, create=st.stable_revision)

    def ensure_canary_identity(self) -> None:
        st = self.st
        if st.canary_revision == self.revision:
            return
        previous = st.canary_revision
        st.canary_revision = self.revision
        if previous:
            self.restart_canary(
                "CanaryReplaced",
                f"new template mid-rollout: canary {previous} replaced by {self.revision}, "
                "restarting at step 1",
            )
        else:
            self.restart_canary(
                "RolloutStarted",
                f"rolling out revision {self.revision} (stable {st.stable_revision}), "
                f"{len(self.steps())} steps",
            )

    def paused_by_analysis(self) -> bool:
        return any(
            c.type == "Paused" and c.status == "True" and c.reason.startswith("Analysis")
            for c in self.old.conditions or []
        )

    def restart_canary(self, reason: str, message: str) -> None:
        st = self.st
        st.current_step_index = 0
        st.step_started_at = _iso(self.now)
        st.aborted_revision = None
        st.abort_reason = None
        st.abort_message = None
        st.measurements = None
        st.analysis_runs = None
        self.event(reason, message)
        self.warn_weight(0)

    def abort(self, reason: str, message: str) -> None:
        st = self.st
        st.aborted_revision = self.revision
        st.abort_reason = reason
        st.abort_message = message
        self.event("Aborted", f"rollout of {self.revision} aborted: {message}", warning=True)

    def aborted(self) -> Plan:
        st = self.st
        immediate = self.spec.canary.abort_scale_down == "Immediate"
        canary, stable = self.side(st.canary_revision), self.side(st.stable_revision)
        if immediate:
            c, s = 0, self.total
        else:
            c, s = next_replicas(
                self.limits, split_replicas(self.total, 0), canary, stable, stable_first=True
            )
        stable_child = self.child(st.stable_revision)
        ready = stable_child.ready if stable_child else 0
        st.message = (
            f"aborted: {st.abort_message}; stable {st.stable_revision} {ready}/{self.total} ready"
            f"{'' if c == 0 and canary.desired == 0 else f', canary scaling to 0 ({c} left)'}"
            "; retry with ramp.dev/retry or change the template"
        )
        self.conditions["Aborted"] = (True, st.abort_reason or "Aborted", st.abort_message or "")
        self.conditions["Progressing"] = (False, "RolloutAborted", st.abort_message or "")
        replicas = self.keep_history({st.stable_revision or "": s, st.canary_revision or "": c})
        return self.finish(replicas)

    def drain_others(self, stable_target: int) -> Plan | None:
        """Children that are neither stable nor canary go to zero, stable capacity first."""
        st = self.st
        keep = {st.stable_revision, st.canary_revision}
        others = [c for c in self.obs.children if c.revision not in keep and c.replicas > 0]
        if not others:
            return None
        stable = self.side(st.stable_revision)
        canary = self.child(st.canary_revision)
        canary_replicas = canary.replicas if canary else 0
        target_stable = max(stable.desired, stable_target - canary_replicas)
        allowance = self.total - self.limits.unavailable - min(stable.ready, target_stable)
        allowance -= canary.ready if canary else 0
        replicas: dict[str, int] = {st.stable_revision or "": target_stable}
        if canary:
            replicas[canary.revision] = canary.replicas
        for other in others:
            n = min(other.replicas, max(allowance, 0))
            replicas[other.revision] = n
            allowance -= n
        names = ", ".join(o.revision for o in others)
        st.message = (
            f"scaling down old revision(s) {names} as stable {st.stable_revision} becomes "
            f"ready ({stable.ready}/{target_stable})"
        )
        self.conditions["Progressing"] = (True, "ScalingDownOld", st.message)
        return self.finish(self.keep_history(replicas))

    def held(self) -> Plan:
        st = self.st
        # Promotions wait for the resume: they are not consumed while held.
        handled = st.handled_tokens or HandledTokens()
        before = self.old.handled_tokens or HandledTokens()
        handled.promote, handled.promote_full = before.promote, before.promote_full
        if not st.held_by_spec_paused:
            self.event("Paused", "spec.paused is true: the rollout holds where it is")
        st.held_by_spec_paused = True
        self.paused_reason = "SpecPaused"
        st.message = (
            f"paused by spec.paused at step {(st.current_step_index or 0) + 1}/"
            f"{len(self.steps())}; set spec.paused to false to resume"
        )
        replicas = {c.revision: c.replicas for c in self.obs.children}
        return self.finish(replicas)

    def walk_steps(self) -> Plan:
        st = self.st
        steps = self.steps()
        index = st.current_step_index or 0
        if self.tokens.get("promote-full"):
            self.event("PromotedFull", "promote-full requested: skipping the remaining steps")
            index = len(steps)
            st.step_started_at = _iso(self.now)
        elif self.tokens.get("promote") and index < len(steps):
            self.event(
                "Promoted",
                f"promote requested: step {index + 1}/{len(steps)} "
                f"({describe_step(steps[index])}) skipped",
            )
            index += 1
            st.step_started_at = _iso(self.now)
        canary_rev, stable_rev = st.canary_revision or "", st.stable_revision or ""
        for _ in range(len(steps) + 2):
            st.current_step_index = index
            weight = step_weight(steps, index)
            target = split_replicas(self.total, weight)
            canary, stable = self.child(canary_rev), self.child(stable_rev)
            c, s = next_replicas(self.limits, target, self.side(canary_rev), self.side(stable_rev))
            replicas = {canary_rev: c, stable_rev: s}
            reached = (
                (c, s) == (target.canary, target.stable)
                and (target.canary == 0 or (canary is not None and canary.converged))
                and (canary is None or canary.replicas == target.canary)
                and (stable is None or (stable.converged and stable.replicas == target.stable))
            )
            self.set_weights(weight)
            started = _parse_iso(st.step_started_at) or self.now
            background = self.background_gate(index, replicas)
            if background is not None:
                return background
            if not reached:
                return self.wait_ready(index, target, started, replicas)
            if index >= len(steps):
                return self.promote()
            step = steps[index]
            if step.pause is not None:
                if step.pause.duration is None:
                    self.paused_reason = "PauseStep"
                    st.message = (
                        f"paused at step {index + 1}/{len(steps)} until promoted "
                        "(kubectl ramp promote, or annotate ramp.dev/promote=<token>)"
                    )
                    return self.finish(self.keep_history(replicas))
                left = (started + parse_duration(step.pause.duration)) - self.now
                if left > timedelta(0):
                    self.wake_in(left.total_seconds())
                    st.message = (
                        f"step {index + 1}/{len(steps)}: pause {step.pause.duration}, "
                        f"{left.total_seconds():.1f}s left"
                    )
                    return self.finish(self.keep_history(replicas))
            elif step.analysis is not None:
                held = self.gate_outcome(
                    f"step-{index + 1}", step.analysis, f"step {index + 1} analysis", replicas
                )
                if held is not None:
                    return held
            index = self.advance(index, target)
        raise AssertionError("unreachable: the step loop is bounded by the number of steps")

    def set_weights(self, desired: int) -> None:
        canary = self.child(self.st.canary_revision)
        stable = self.child(self.st.stable_revision)
        c_ready = min(canary.ready, canary.replicas) if canary else 0
        s_ready = min(stable.ready, stable.replicas) if stable else 0
        actual = round(100 * c_ready / (c_ready + s_ready)) if c_ready + s_ready else 0
        self.st.weights = Weights(desired=desired, actual=actual)

    def wait_ready(
        self, index: int, target: Split, started: datetime, replicas: dict[str, int]
    ) -> Plan:
        st = self.st
        steps = self.steps()
        canary, stable = self.child(st.canary_revision), self.child(st.stable_revision)
        c_ready = canary.ready if canary else 0
        s_ready = stable.ready if stable else 0
        deadline = started + timedelta(seconds=self.spec.deadline_seconds)
        where = (
            f"step {index + 1}/{len(steps)} ({describe_step(steps[index])})"
            if index < len(steps)
            else "promotion (weight 100)"
        )
        if self.now >= deadline:
            self.abort(
                "ProgressDeadlineExceeded",
                f"{where} not ready within progressDeadlineSeconds="
                f"{self.spec.deadline_seconds}: canary {c_ready}/{target.canary} ready, "
                f"stable {s_ready}/{target.stable} ready",
            )
            return self.aborted()
        self.wake_in((deadline - self.now).total_seconds())
        st.message = (
            f"{where}: waiting for canary {c_ready}/{target.canary} ready and stable "
            f"{s_ready}/{target.stable}"
        )
        return self.finish(self.keep_history(replicas), create=st.canary_revision)

    def background_gate(self, index: int, replicas: dict[str, int]) -> Plan | None:
        background = self.spec.canary.analysis
        if background is None or index < (background.starting_step or 0):
            return None
        return self.gate_outcome("background", background, "background analysis", replicas)

    def gate_outcome(
        self, run: str, ref: AnalysisRef, what: str, replicas: dict[str, int]
    ) -> Plan | None:
        st = self.st
        if self.obs.gate is None:
            result = GateResult("Error", "analysis is not available in this operator")
        else:
            result = self.obs.gate(run, ref)
        if result.outcome == "Passed":
            return None
        if result.outcome == "Running":
            if result.next_check_in is not None:
                self.wake_in(result.next_check_in)
            if run == "background":
                return None
            st.message = f"{what}: {result.message}"
            return self.finish(self.keep_history(replicas))
        if result.outcome == "Failed" or result.abort:
            self.abort("AnalysisFailed", f"{what}: {result.message}")
            return self.aborted()
        self.paused_reason = f"Analysis{result.outcome}"
        st.message = (
            f"paused: {what} is {result.outcome.lower()}: {result.message}; nothing is "
            "promoted; fix the cause and retry (ramp.dev/retry) or promote"
        )
        return self.finish(self.keep_history(replicas))

    def advance(self, index: int, target: Split) -> int:
        st = self.st
        steps = self.steps()
        self.event(
            "StepCompleted",
            f"step {index + 1}/{len(steps)} ({describe_step(steps[index])}) complete: "
            f"canary {target.canary}, stable {target.stable} ready",
        )
        index += 1
        st.current_step_index = index
        st.step_started_at = _iso(self.now)
        finished = f"step-{index}"
        runs = [r for r in st.analysis_runs or [] if r.name != finished]
        st.analysis_runs = runs or None
        self.warn_weight(index)
        return index

    def warn_weight(self, index: int) -> None:
        """Warn when the weight of the step just entered cannot be given exactly."""
        steps = self.steps()
        if index >= len(steps) or steps[index].set_weight is None:
            return
        split = split_replicas(self.total, steps[index].set_weight or 0)
        if not split.representable:
            self.event(
                "UnrepresentableWeight",
                f"setWeight {split.weight} with {self.total} replicas is "
                f"{split.canary} canary / {split.stable} stable: actual weight "
                f"{split.actual_weight}%",
                warning=True,
            )

    def promote(self) -> Plan:
        st = self.st
        old_stable, new_stable = st.stable_revision or "", st.canary_revision or ""
        self.event(
            "RolloutCompleted",
            f"revision {new_stable} promoted to stable (was {old_stable}); no pod restarted",
        )
        st.stable_revision = new_stable
        self.clear_canary()
        st.message = f"stable revision {new_stable} runs {self.total}/{self.total} ready"
        self.conditions["Progressing"] = (False, "RolloutCompleted", "")
        self.set_weights(0)
        replicas = self.keep_history({new_stable: self.total, old_stable: 0})
        return self.finish(replicas)

    def keep_history(self, replicas: dict[str, int]) -> dict[str, int]:
        """Everything not named goes to zero; history beyond the limit is deleted later."""
        result = {c.revision: 0 for c in self.obs.children}
        result.update({k: v for k, v in replicas.items() if k})
        return result

    # -- the end of every path ------------------------------------------------------

    def finish(self, replicas: dict[str, int] | None, create: str | None = None) -> Plan:
        st = self.st
        roles: dict[str, Role] = {}
        services: dict[str, str] = {}
        delete: list[str] = []
        if replicas is not None:
            if st.stable_revision:
                roles[st.stable_revision] = "stable"
            if st.canary_revision and st.canary_revision != st.stable_revision:
                roles[st.canary_revision] = "canary"
            delete = self.history_to_delete(replicas)
            for name in delete:
                replicas.pop(next(c.revision for c in self.obs.children if c.name == name), None)
            canary_live = st.canary_revision and st.aborted_revision != st.canary_revision
            pinned_canary = st.canary_revision if canary_live else st.stable_revision
            strategy = self.spec.canary
            if strategy.stable_service and st.stable_revision:
                services[strategy.stable_service] = st.stable_revision
            if strategy.canary_service and pinned_canary:
                services[strategy.canary_service] = pinned_canary
        self.fill_counts()
        self.fill_conditions()
        st.phase = phase(st)
        return Plan(
            status=st,
            replicas=replicas,
            roles=roles,
            create=create if replicas is not None else None,
            delete=delete,
            services=services,
            events=self.events,
            requeue_after=self.requeue,
        )

    def history_to_delete(self, replicas: dict[str, int]) -> list[str]:
        live = {self.st.stable_revision, self.st.canary_revision}
        idle = [
            c
            for c in self.obs.children
            if c.revision not in live and replicas.get(c.revision, 0) == 0 and c.current == 0
        ]
        idle.sort(key=lambda c: c.created, reverse=True)
        return [c.name for c in idle[self.spec.history_limit :]]

    def fill_counts(self) -> None:
        st = self.st
        canary = self.child(st.canary_revision)
        stable = self.child(st.stable_revision)
        st.replicas = sum(c.current for c in self.obs.children)
        st.ready_replicas = sum(min(c.ready, c.current) for c in self.obs.children)
        st.canary_replicas = canary.current if canary else 0
        st.canary_ready_replicas = canary.ready if canary else 0
        st.stable_replicas = stable.current if stable else 0
        st.stable_ready_replicas = stable.ready if stable else 0
        if st.canary_revision is None:
            st.weights = Weights(desired=0, actual=0)
        elif st.weights is None:
            self.set_weights(0)

    def fill_conditions(self) -> None:
        st = self.st
        floor = self.total - self.limits.unavailable
        available = (st.ready_replicas or 0) >= floor
        self.conditions["Available"] = (
            available,
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            f"{st.ready_replicas or 0} ready, {floor} required",
        )
        if "Progressing" not in self.conditions:
            self.conditions["Progressing"] = (True, "RolloutInProgress", st.message or "")
        if "Aborted" not in self.conditions:
            self.conditions["Aborted"] = (False, "NotAborted", "")
        paused = self.paused_reason is not None
        self.conditions["Paused"] = (paused, self.paused_reason or "NotPaused", st.message or "")
        invalid = self.conditions.get("InvalidSpec", (False, "", ""))[0]
        progressing = self.conditions["Progressing"][0]
        healthy = (
            not invalid and not paused and not progressing and not self.conditions["Aborted"][0]
        )
        self.conditions["Healthy"] = (
            healthy,
            "Healthy" if healthy else "NotHealthy",
            "" if healthy else (st.message or ""),
        )
        old = {c.type: c for c in self.old.conditions or []}
        result = []
        for ctype in ("Available", "Progressing", "Paused", "Healthy", "Aborted", "InvalidSpec"):
            if ctype not in self.conditions:
                if ctype in old:
                    result.append(old[ctype])
                continue
            value, reason, message = self.conditions[ctype]
            status: Literal["True", "False"] = "True" if value else "False"
            prev = old.get(ctype)
            since = prev.last_transition_time if prev and prev.status == status else None
            result.append(
                Condition(
                    type=ctype,
                    status=status,
                    reason=reason,
                    message=message,
                    last_transition_time=since or _iso(self.now),
                )
            )
        st.conditions = result


def _camel(verb: str) -> str:
    return "".join(part.capitalize() for part in verb.split("-"))


def phase(status: RolloutStatus) -> Phase:
    """The phase, derived from the rest of the status (conditions and revisions).

    Order of precedence: Degraded (invalid spec) > Aborted > Paused > Progressing > Healthy.
    """
    conditions = {c.type: c.status == "True" for c in status.conditions or []}
    if conditions.get("InvalidSpec"):
        return Phase.DEGRADED
    if status.aborted_revision and status.aborted_revision == status.canary_revision:
        return Phase.ABORTED
    if conditions.get("Paused"):
        return Phase.PAUSED
    if conditions.get("Progressing") or status.canary_revision:
        return Phase.PROGRESSING
    return Phase.HEALTHY


def plan(observed: Observed, now: datetime) -> Plan:
    """Decide the next move of a Rollout. Pure: the clock is the ``now`` parameter."""
    return _Planner(observed, now).run()
