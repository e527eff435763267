"""A simulated cluster that can lie, the shell's execution of a Plan, and the invariants.

The REAL planner (:func:`ramp.core.plan.plan`) is driven through this cluster:

* a Deployment controller that settles only when it acts (``observedGeneration`` lags,
  ``status.replicas``/``readyReplicas`` are frozen until then), pods that become ready
  after a per-revision delay or never, pods knocked unready;
* a watch-fed index that lags (the planner sees the children / history of the previous
  reconcile) and a cached Rollout body that is stale (the status patch then conflicts);
* other actors: children deleted (at once or foreground) or scaled, a look-alike
  Deployment, an HPA scaling ``spec.replicas``, a status restored from a backup (None),
  Service selectors edited, tokens and template / spec changes at any time;
* the REAL shell's execution of a plan (:class:`ramp.shell.controller.apply.Executor`
  over the write ports of :mod:`model.sim_shell`: history, creates, status, Service
  pins, scales and role labels, deletes, Events), which an operator restart can cut
  after any part, its status throttle and its handling of refused writes;
* the shell's analysis measurement folding (``Gates.measure``) with verdicts of all four
  kinds chosen by the test.

:class:`Oracle` keeps what the planner must honour and checks the invariants (a)-(g) of
issue 9 after every reconcile.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from model.crd_schema import json_copy, schema_errors, status_schema
from model.sim_config import check_reads_copies, reading_config
from model.sim_config import revision as config_revision
from model.sim_measure import measure_due_now
from model.sim_shell import SimWorkloads, SimWrites
from model.sim_workload import Held, observed_extras, settle_rolled
from ramp.api.analysis import Measurement, Metric, Verdict
from ramp.api.durations import parse_duration
from ramp.api.labels import (
    ABORTED_ANNOTATION,
    PREFIX,
    PROMOTED_ANNOTATION,
    REVISION_LABEL,
    revision_hash,
)
from ramp.api.rollout import Rollout, RolloutStatus
from ramp.core.actions import Actions
from ramp.core.canary.steps import step_weight
from ramp.core.model import Child, HistoryEntry, Observed, Plan, iso
from ramp.core.names import (
    child_name,
)
from ramp.core.plan import plan, runs_in_play
from ramp.core.resolve import ResolvedAnalysis, resolve_analysis
from ramp.core.split import Limits, split_replicas
from ramp.core.verdicts import format_time, parse_time
from ramp.core.workload_model import MANAGED_ANNOTATION
from ramp.shell.adapters.kube import Conflict
from ramp.shell.adapters.kube_objects import endpoints_by_revision
from ramp.shell.controller.apply import Executor, Outcome

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAME = "web"
ROLLOUT_NAMES = [NAME] * 5 + ["a" * 47, "b" * 64, ("long-name." * 26)[:252] + "x"]
"""The machines' Rollout names: mostly short, some at the limits (47: pods no longer start
with their Deployment's name; 64: no longer a label value; 253: the API's limit)."""
UID = "uid-web"
FOREIGN_UID = "uid-someone-else"
PARTS = ("history", "creates", "status", "services", "scales", "deletes", "events")
"""The parts of Controller.apply, in order; a restart may cut after any of them."""


STATS: Counter[str] = Counter()
"""Event reasons and phases seen over a run (``RAMP_MODEL_STATS=1`` prints them)."""


REFUSALS = (409, 422, 429, 500, 400)
"""What the simulated API server answers: a conflict, invalid, throttled, an internal
error (an admission webhook down: ``failurePolicy: Fail``), a webhook's denial (400)."""


class Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Violation(AssertionError):
    """An invariant of issue 9 does not hold."""


def template(image: int, invalid: bool = False) -> dict[str, Any]:
    labels = {"app": NAME}
    if invalid:
        labels[f"{PREFIX}/x"] = "y"  # reserved: an invalid spec
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": f"app:{image}"}]},
    }


def metric(name: str = "m", abort_on_limits: bool = False) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "interval": "5s",
        "count": 2,
        "consecutiveErrorLimit": 1,
        "prometheus": {"address": "http://prometheus:9090", "query": "up"},
        "successCondition": "result > 0",
    }
    if abort_on_limits:
        m["onInconclusive"] = "Abort"
        m["onError"] = "Abort"
    return m


@dataclass
class Config:
    """The Rollout's spec, as drawn for one example."""

    replicas: int = 4
    max_surge: int | str = 1
    max_unavailable: int | str = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    background: dict[str, Any] | None = None
    abort_scale_down: str | None = None
    deadline: int = 60
    services: bool = True
    history_limit: int = 1
    blue_green: dict[str, Any] | None = None
    """``strategy.blueGreen`` (then the canary fields above are not used)."""
    plain: int = 0
    """Replicas of a plain Deployment (``web-plain``, not Ramp's) that runs before the
    Rollout and whose pods the Services select until Ramp pins them: a migration."""
    workload_ref: bool = False
    """The Rollout adopts that Deployment (``spec.workloadRef``, see
    :mod:`model.sim_workload`) instead of having a template."""
    name: str = NAME
    """The Rollout's name: up to the API's 253 characters (issue 19, class 5)."""
    track_config: bool = False
    """``spec.trackConfig``: the template reads the ConfigMap ``settings``, whose data the
    machines change (:mod:`model.sim_config`)."""
    replica_sets: bool = False
    """The operator runs with ``--children=replicasets``: a new revision's child is a
    ReplicaSet (no Progressing condition; an edit of its template rolls no pod)."""


def rollout_body(cfg: Config, image: int = 1) -> dict[str, Any]:
    canary: dict[str, Any] = {
        "steps": copy.deepcopy(cfg.steps),
        "maxSurge": cfg.max_surge,
        "maxUnavailable": cfg.max_unavailable,
    }
    if cfg.background is not None:
        canary["analysis"] = copy.deepcopy(cfg.background)
    if cfg.abort_scale_down:
        canary["abortScaleDown"] = cfg.abort_scale_down
    if cfg.services:
        canary["stableService"] = f"{NAME}-stable"
        canary["canaryService"] = f"{NAME}-canary"
    strategy: dict[str, Any] = {"canary": canary}
    if cfg.blue_green is not None:
        strategy = {"blueGreen": copy.deepcopy(cfg.blue_green)}
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": cfg.name,
            "namespace": "ns",
            "uid": UID,
            "generation": 1,
            "resourceVersion": "1",
            "annotations": {},
        },
        "spec": {
            "replicas": cfg.replicas,
            "selector": {"matchLabels": {"app": NAME}},
            "template": reading_config(template(image)) if cfg.track_config else template(image),
            "progressDeadlineSeconds": cfg.deadline,
            "revisionHistoryLimit": cfg.history_limit,
            "strategy": strategy,
            **({"trackConfig": True} if cfg.track_config else {}),
        },
    }


@dataclass
class Pod:
    born: datetime
    unready_until: datetime | None = None
    name: str = ""
    """As the API server names it (:func:`pod_name`): the shell tells endpoints apart by
    their pods, so long Rollout names must reach the shell as they really are."""
    runs: str = ""
    """The revision hash of the pod template the pod was made from (issue 19: someone may
    edit a child's template; its new pods are not the revision's)."""


def pod_name(deployment: str, revision: str, seq: int) -> str:
    """A pod's name as Kubernetes generates it: the ReplicaSet is
    ``<deployment>-<pod-template-hash>`` and its pods ``generateName: <replicaset>-``,
    which the API server cuts to 58 characters before adding 5 random ones."""
    base = f"{deployment}-{revision[::-1][:9]}-"[:58]
    return f"{base}{seq:05d}"[-253:]


@dataclass
class Dep:
    """A Deployment as the API server holds it (spec, and the status its controller set)."""

    name: str
    revision: str
    role: str | None
    owner: str
    template: Mapping[str, Any]
    replicas: int
    created: str
    generation: int = 1
    observed_generation: int = 0
    pods: list[Pod] = field(default_factory=list)
    ready: int = 0
    current: int = 0
    deleting: bool = False
    progressed: str = ""
    kind: str = "Deployment"
    """Or ``ReplicaSet`` (``Config.replica_sets``): no Progressing condition (``progressed``
    stays ""), and an edit of its template changes only the pods made after it."""

    def child(self) -> Child:
        return Child(
            name=self.name,
            revision=self.revision,
            role=self.role,
            replicas=self.replicas,
            ready=self.ready,
            current=self.current,
            settled=self.observed_generation >= self.generation,
            created=self.created,
            owner=self.owner,
            deleting=self.deleting,
            progressed=self.progressed,
            kind=self.kind,
            pod_labels=tuple(
                sorted(((self.template.get("metadata") or {}).get("labels") or {}).items())
            ),
            **drift_of(self),
        )


def drift_of(dep: Dep) -> dict[str, Any]:
    """``Child.drift`` as the shell reports it: the Deployment's pod template is not its
    revision's (someone edited it)."""
    if revision_hash(dep.template) == dep.revision:
        return {}
    return {"drift": f"the pod template of Deployment {dep.name} is not revision {dep.revision}'s"}


@dataclass
class CR:
    """A ControllerRevision of the Rollout."""

    revision: str
    number: int
    template: Mapping[str, Any] | None
    annotations: dict[str, str]

    def entry(self) -> HistoryEntry:
        return HistoryEntry(
            revision=self.revision,
            number=self.number,
            template=self.template,
            promoted_at=self.annotations.get(PROMOTED_ANNOTATION),
            aborted=self.annotations.get(ABORTED_ANNOTATION),
        )


@dataclass
class View:
    """What one reconcile observed."""

    body: dict[str, Any]
    children: tuple[Child, ...]
    history: tuple[HistoryEntry, ...]
    services: dict[str, dict[str, str] | None]


class Cluster:
    """The API server's objects, the Deployment controller, and the shell."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.config_data: int | None = 1
        """The data version of the ConfigMap a tracked Rollout reads (None: deleted)."""
        self.now = T0
        self.body = rollout_body(cfg)
        self.status: dict[str, Any] | None = None
        self.rv = 1
        self.deps: dict[str, Dep] = {}
        self.history: dict[str, CR] = {}
        self.services: dict[str, dict[str, str] | None] = {}
        if cfg.services:
            self.services = {f"{NAME}-stable": {"app": NAME}, f"{NAME}-canary": {"app": NAME}}
        if cfg.blue_green is not None:
            bg = cfg.blue_green
            names = [n for n in (bg["activeService"], bg.get("previewService")) if n]
            self.services = {name: {"app": NAME} for name in names}
        self.endpoints: dict[str, dict[str, int]] = {}
        self.endpoint_pods: dict[str, list[tuple[str, bool]]] = {}
        self.endpoint_others: dict[str, int] = {}
        self.pod_seq = 0
        """Blue-green: the EndpointSlices of each pinned Service, ready endpoints by
        revision, as the selectors and the pods were one tick ago (see :meth:`advance`)."""
        self.ready_delay: dict[str, float | None] = {}
        """Per revision: seconds until a new pod is ready (None: never). Default 2 s."""
        self.verdicts: dict[str, Verdict] = {}
        """Per revision: the verdict every measurement of it gets (default Pass)."""
        self.events: list[tuple[datetime, str, str]] = []
        self.previous_view: View | None = None
        self.created_seq = 0
        self.foreign_writes: list[str] = []
        self.extra_labels: dict[str, str] = {}
        """Labels a selector change added to the selector and the template."""
        self.plain: Dep | None = None
        if cfg.plain:
            self.plain = plain_deployment(cfg.plain)
        self.held = Held()
        self.gone = False
        """The Rollout was deleted and garbage collection took it."""
        self.held_at_deletion = False
        """The Rollout was deleted while its give-back finalizer held it."""
        if cfg.workload_ref:
            self.plain = plain_deployment(cfg.replicas, template(1))
            del self.spec["template"]
            self.spec["workloadRef"] = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": self.plain.name,
                "scaleDown": "progressively",
            }
        self.proven: set[str] = set()
        """Revisions that ran a ready pod of their own template (seen from the pods, not
        from Ramp's status): only these may ever be promoted (issue 19, class 4)."""
        self.refuse: tuple[int, int] | None = None
        """(n, code): the API server refuses the n-th write of the next reconcile."""
        self.refused_in_pass = False
        """A write of the pass being applied was refused (the pass stopped there)."""
        self.view_lagged = False
        """The pass being applied read a child index behind the truth."""
        self.seen_ready: dict[str, int] = {}
        """Ready pods by revision in the child index the last pass read."""
        self.seen_live: set[str] = set()
        """The revisions whose child the last pass's index showed, not deleting."""
        self.writes = 0
        self.drifted: set[str] = set()
        self.originals: dict[str, Mapping[str, Any]] = {}
        self.oracle = Oracle(self)
        self.executor = self.new_executor()
        self.unseen: set[str] = set()
        self.scaled_since_view: dict[str, int] = {}
        """Children our shell scaled since the last view (name -> replicas written)."""
        """Children created by the shell that the index has not shown yet (its
        expectations): while one is missing from the index, it reads the API instead."""
        self.writer: Callable[[], bool] | None = None
        """Whether exactly one operator process may act on the Rollout now (None: one
        operator, always): two layouts of shards overlapping (:mod:`model.sim_shards`)."""

    # -- the API server ------------------------------------------------------------

    def bump(self, spec: bool = False) -> None:
        self.rv += 1
        self.body["metadata"]["resourceVersion"] = str(self.rv)
        if spec:
            self.body["metadata"]["generation"] += 1

    def full_body(self) -> dict[str, Any]:
        body = json_copy(self.body)
        if self.status is not None:
            body["status"] = json_copy(self.status)
        return body

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.body["spec"]
        return spec

    @property
    def canary_spec(self) -> dict[str, Any]:
        canary: dict[str, Any] = self.spec["strategy"]["canary"]
        return canary

    def owned(self) -> list[Dep]:
        return [d for d in self.deps.values() if d.owner == UID and not d.deleting]

    def truth_view(self) -> View:
        return View(
            body=self.full_body(),
            children=tuple(d.child() for d in self.deps.values()),
            history=tuple(h.entry() for h in self.history.values()),
            services=json_copy(self.services),
        )

    # -- the Deployment controller and the pods ------------------------------------

    def pod_ready(self, dep: Dep, pod: Pod) -> bool:
        if pod.unready_until is not None and self.now < pod.unready_until:
            return False
        delay = self.ready_delay.get(dep.revision, 2.0)
        return delay is not None and self.now >= pod.born + timedelta(seconds=delay)

    def slices(self) -> dict[str, dict[str, int]]:
        """What the EndpointSlice controller publishes now for each pinned Service: the
        ready pods its selector matches (template labels plus the revision label), by
        revision; the adopted Deployment's (``workloadRef``) count as revision ``plain``."""
        slices: dict[str, dict[str, int]] = {}
        plain = [self.plain] if self.plain is not None else []
        for name, selector in self.services.items():
            counts: dict[str, int] = {}
            for dep in [*self.deps.values(), *plain]:
                labels = {**dep.template.get("metadata", {}).get("labels", {})}
                if dep is not self.plain:  # the adopted Deployment's pods have no revision
                    labels[REVISION_LABEL] = dep.revision
                if selector is None or dep.deleting:
                    continue
                if any(labels.get(k) != v for k, v in selector.items()):
                    continue
                ready = sum(self.pod_ready(dep, p) for p in dep.pods)
                if ready:
                    counts[dep.revision] = counts.get(dep.revision, 0) + ready
            slices[name] = counts
        return slices

    def slice_pods(self) -> dict[str, list[tuple[str, bool]]]:
        """The same EndpointSlices as the shell reads them: (pod name, ready) each."""
        out: dict[str, list[tuple[str, bool]]] = {}
        for name, selector in self.services.items():
            out[name] = [
                (pod.name, self.pod_ready(dep, pod))
                for dep in self.deps.values()
                if selector is not None and not dep.deleting
                for pod in dep.pods
                if all(
                    {**dep.template.get("metadata", {}).get("labels", {}),
                     REVISION_LABEL: dep.revision}.get(k) == v
                    for k, v in selector.items()
                )
            ]  # fmt: skip
        return out

    def slice_others(self) -> dict[str, int]:
        """Ready endpoints of the same slices whose pods carry no revision label: the
        adopted Deployment's (``Observed.others``)."""
        plain = self.plain
        out: dict[str, int] = {}
        for name, selector in self.services.items():
            matches = (
                plain is not None
                and selector is not None
                and not plain.deleting
                and all(self.pod_labels(plain).get(k) == v for k, v in selector.items())
            )
            out[name] = sum(self.pod_ready(plain, p) for p in plain.pods) if matches else 0
        return out

    def shell_endpoints(self) -> dict[str, dict[str, int]]:
        """What the shell makes of :meth:`slice_pods` (``Controller._observe``): ready
        endpoints by revision, each pod's revision read from its labels."""
        labels = {pod.name: dep.revision for dep in self.deps.values() for pod in dep.pods}
        return {
            service: endpoints_by_revision(pods, labels)
            for service, pods in self.endpoint_pods.items()
        }

    def advance(self, seconds: float, controller_acts: bool) -> None:
        if self.cfg.blue_green is not None:
            self.endpoints = self.slices()  # a tick behind the selectors and the pods
            self.endpoint_pods = self.slice_pods()
            self.endpoint_others = self.slice_others()
        self.now += timedelta(seconds=seconds)
        if not controller_acts:
            return
        for dep in list(self.deps.values()):
            if dep.deleting:
                del self.deps[dep.name]  # garbage collection finished
                continue
            dep.observed_generation = dep.generation
            runs = revision_hash(dep.template)
            before = (sum(p.runs == runs for p in dep.pods), dep.ready)
            if dep.kind == "Deployment":  # an edit rolls them (a ReplicaSet's keeps them)
                dep.pods = [p for p in dep.pods if p.runs in ("", runs)]
            if len(dep.pods) > dep.replicas:
                # A ReplicaSet removes unready pods first, then the newest.
                dep.pods.sort(key=lambda p: (self.pod_ready(dep, p), -p.born.timestamp()))
                dep.pods = dep.pods[len(dep.pods) - dep.replicas :]
            while len(dep.pods) < dep.replicas:
                self.pod_seq += 1
                name = pod_name(dep.name, dep.revision, self.pod_seq)
                dep.pods.append(Pod(born=self.now, name=name, runs=runs))
            dep.current = len(dep.pods)
            dep.ready = sum(self.pod_ready(dep, p) for p in dep.pods)
            moved = sum(p.runs == runs for p in dep.pods) > before[0] or dep.ready > before[1]
            if moved and dep.kind == "Deployment":
                dep.progressed = iso(self.now)  # its Progressing condition's lastUpdateTime
        if self.plain is not None:
            self.settle_plain(self.plain)
        self.note_proven()

    def note_proven(self) -> None:
        """Revisions with a ready pod of their own template now (what a user saw run)."""
        for dep in self.deps.values():
            if dep.owner == UID and not dep.deleting:
                for pod in dep.pods:
                    if pod.runs == dep.revision and self.pod_ready(dep, pod):
                        self.proven.add(dep.revision)
                        break

    # -- the shell -----------------------------------------------------------------

    def observe(self, lag_children: bool, lag_history: bool, stale_body: bool) -> View:
        truth = self.truth_view()
        previous = self.previous_view or truth
        self.previous_view = truth
        index = previous.children if lag_children else truth.children
        scaled, self.scaled_since_view = self.scaled_since_view, {}
        if lag_children:
            # The shell plans a child the index shows older than a scale of its own as it
            # scaled it (Expectations.overlay): the previous view predates the last pass.
            index = [
                replace(ch, replicas=scaled[ch.name], settled=False)
                if scaled.get(ch.name, ch.replicas) != ch.replicas
                else ch
                for ch in index
            ]
        self.view_lagged = index != truth.children
        self.seen_ready = {ch.revision: ch.ready for ch in index}
        self.seen_live = {ch.revision for ch in index if not ch.deleting}
        if not lag_children:
            self.unseen &= set(self.deps)  # (a create deleted since: its expectation expires)
        if self.unseen - {c.name for c in index}:
            index = truth.children  # behind a create of ours: the shell reads the API
        else:
            self.unseen.clear()  # the index shows our creates (Expectations.unshown)
        return View(
            body=previous.body if stale_body else truth.body,
            children=index,
            history=previous.history if lag_history else truth.history,
            services=truth.services,
        )

    def measure(self, rollout: Rollout) -> tuple[Rollout, dict[str, ResolvedAnalysis | str]]:
        """The shell's ``Gates.measure``: take what is due, fold it into the run counters."""
        shell = getattr(self, "shell_measure", None)
        if shell is not None:  # the real Gates with slow or hanging measurements
            return shell(self, rollout)  # type: ignore[no-any-return]
        runs = runs_in_play(rollout)
        if not runs:
            return rollout, {}
        resolved: dict[str, ResolvedAnalysis | str] = {
            name: resolve_analysis(ref, {}) for name, ref in runs.items()
        }
        return measure_due_now(rollout, resolved, self.now, self.simulated_measurement), resolved

    def simulated_measurement(self, metric: Metric, analysis: str, revision: str) -> Measurement:
        """A measurement of the verdict ``verdicts`` chose for the revision."""
        verdict = self.verdicts.get(revision, Verdict.PASS)
        return Measurement(
            metric=metric.name,
            verdict=verdict,
            time=format_time(self.now),
            value="1" if verdict in (Verdict.PASS, Verdict.FAIL) else None,
            message=f"simulated {verdict.value}",
            revision=revision,
            analysis=analysis,
        )

    def reconcile(
        self,
        *,
        lag_children: bool = False,
        lag_history: bool = False,
        stale_body: bool = False,
        cut: int = len(PARTS),
    ) -> Plan | None:
        """One reconcile of the shell: observe, measure, plan, apply (cut after ``cut``
        parts by an operator restart). Checks the invariants. None when nothing ran."""
        if self.writer is not None and not self.writer():
            return None  # no operator process may act on the Rollout now (sim_shards)
        if self.gone:
            self.oracle.services(None, None)  # what the Rollout left behind
            self.oracle.given_back()
            return None
        self.writes = 0
        self.created_now: set[str] = set()
        self.note_proven()
        self.drifted = set()
        if not lag_children:  # what this reconcile sees: children whose template was edited
            self.drifted = {
                d.name
                for d in self.owned()
                if revision_hash(d.template) != d.revision and (d.replicas or d.pods)
            }
        view = self.observe(lag_children, lag_history, stale_body)
        rollout = Rollout.model_validate(view.body)
        meta = view.body["metadata"]
        refused = self.executor.take_refusal((meta["namespace"], meta["name"]), meta["generation"])
        observed = Observed(
            rollout=rollout,
            generation=int(view.body["metadata"]["generation"]),
            annotations=view.body["metadata"].get("annotations") or {},
            children=view.children,
            uid=UID,
            history=view.history,
            services=view.services,
            endpoints=self.shell_endpoints(),
            others=dict(self.endpoint_others),
            refused=refused,
            **observed_extras(self, view.body),
        )
        rollout, resolved = self.measure(rollout)
        observed = Observed(**{**observed.__dict__, "rollout": rollout, "analysis": resolved})
        result = plan(observed, self.now)
        # (n) the last pass's create was refused for its spec: no verb is consumed. (With no
        # status, tokens already there are recorded handled and never acted on, refusal or
        # not: a restore must not replay a verb. Found by make fuzz-for, seed 613476233.)
        if refused is not None and observed.rollout.status is not None:
            old = observed.rollout.status.handled_tokens
            new = result.status.handled_tokens
            for verb in ("promote", "promote_full", "retry"):
                if getattr(new, verb, None) != getattr(old, verb, None):
                    raise Violation(f"(n) a refused create consumed the {verb} token")
        if self.cfg.track_config:
            check_reads_copies(result)
        self.oracle.before_apply(observed, view, result)
        self.refused_in_pass = False
        done = self.apply(view, observed, result, cut)
        self.refuse = None
        self.last = (result, done)
        STATS["reconciles"] += 1
        STATS.update(f"event:{e.reason}" for e in result.events)
        STATS[f"phase:{result.status.phase}"] += 1
        for cond in result.status.conditions or []:
            if cond.type in ("Paused", "Aborted") and cond.status == "True":
                STATS[f"{cond.type}:{cond.reason}"] += 1
        STATS.update(
            f"measured:{r.name[:4]}:{m.phase}"
            for r in (rollout.status.analysis_runs if rollout.status else None) or []
            for m in r.metrics
        )
        if len(done) < len(PARTS):
            STATS["cut-or-conflict"] += 1
        self.oracle.after_apply(observed, view, result, done)
        if observed.deleting:
            self.oracle.services(observed, result)
        return result

    def new_executor(self) -> Executor:
        """The shell's executor over this cluster (a new one: an operator restarted)."""
        return Executor(
            SimWrites(self), SimWorkloads(self), clock=lambda: (self.now - T0).total_seconds()
        )

    def apply(self, view: View, observed: Observed, result: Plan, cut: int) -> set[str]:
        """The REAL executor carries the plan's actions out (an operator restart stops it
        after ``cut`` parts); returns the parts that were carried out."""
        todo = self.executor.actions(view.body, observed, result)
        if result.write_status and cut < len(PARTS):
            kept = tuple(takewhile(lambda a: a.part not in PARTS[cut:], todo.steps))
            todo = Actions(kept, todo.requeue_after)
        outcome = Outcome()
        failed = False
        try:
            self.executor.execute(view.body, observed, todo, outcome)
        except (Conflict, ApiException):
            failed = True  # the reconcile fails here (or plans again from a fresh read)
        if cut < len(PARTS):
            self.executor = self.new_executor()  # a restart forgets the throttle, refusals
        if not result.write_status:
            return set()
        if failed or outcome.refused is not None:
            if len(outcome.done) >= len(todo.steps):
                return set()  # the give-back finalizer was added: plan again
            stopped = todo.steps[len(outcome.done)].part
            return set(PARTS[: PARTS.index(stopped)]) if stopped in PARTS else set()
        return set(PARTS[:cut])

    # -- the user's vocabulary (issue 19) --------------------------------------------

    def tpl(self, image: int, invalid: bool = False) -> dict[str, Any]:
        """:func:`template` with the labels a selector change added."""
        tpl = template(image, invalid)
        tpl["metadata"]["labels"].update(self.extra_labels)
        return reading_config(tpl) if self.cfg.track_config else tpl

    def revision(self, image: int) -> str:
        """The revision of image ``image``; of a tracked Rollout, of data version ``image``
        (its image does not change, its ConfigMap does)."""
        if self.cfg.track_config:
            return config_revision(self.tpl(1), image)
        return revision_hash(self.tpl(image))

    def set_config(self, image: int, invalid: bool) -> None:
        """A tracked Rollout's ``set_template``: the ConfigMap's data becomes version
        ``image``, or (invalid) the ConfigMap is deleted. The Rollout does not change."""
        self.config_data = None if invalid else image

    def change_selector(self) -> None:
        """Add ``track: x`` to ``spec.selector.matchLabels`` and to the template's labels
        in one apply, or take it out of both. The API server refuses this now
        (``spec.selector`` is immutable); the model keeps it, as an older CRD would, or a
        Rollout re-created over its orphaned children."""
        if "template" not in self.spec:
            return  # workloadRef: the Deployment's selector is immutable
        match = self.spec["selector"]["matchLabels"]
        if "track" in self.extra_labels:
            del self.extra_labels["track"]
            match.pop("track", None)
        else:
            self.extra_labels["track"] = match["track"] = "x"
        labels = self.spec["template"]["metadata"]["labels"]
        labels.pop("track", None)
        labels.update(self.extra_labels)
        self.bump(spec=True)

    def change_workload(self, tpl: dict[str, Any]) -> bool:
        """With ``workloadRef`` a new template is written to the adopted Deployment (held
        paused, its pods stay as they are). False: the Rollout has a template."""
        if "workloadRef" not in self.spec or self.plain is None:
            return False
        self.plain.template = tpl
        self.plain.generation += 1
        return True

    def pod_labels(self, dep: Dep) -> dict[str, str]:
        """The labels of ``dep``'s pods: its template's, and Ramp's revision label."""
        labels = dict(dep.template.get("metadata", {}).get("labels", {}))
        if dep.owner == UID:
            labels[REVISION_LABEL] = dep.revision
        return labels

    def settle_plain(self, dep: Dep) -> None:
        """The Deployment controller acts on the plain Deployment (as on the children)."""
        settle_rolled(self)
        dep.observed_generation = dep.generation
        if len(dep.pods) > dep.replicas:
            dep.pods.sort(key=lambda p: (self.pod_ready(dep, p), -p.born.timestamp()))
            dep.pods = dep.pods[len(dep.pods) - dep.replicas :]
        while len(dep.pods) < dep.replicas:
            dep.pods.append(Pod(born=self.now))
        dep.current = len(dep.pods)
        dep.ready = sum(self.pod_ready(dep, p) for p in dep.pods)

    # -- refusals (issue 19, class 7) --------------------------------------------------

    def write(self, create: bool = False) -> bool:
        """One write of the shell; the API server may refuse it (``self.refuse``).
        False: a create answered 409 (taken as "exists")."""
        self.writes += 1
        if self.refuse is not None and self.writes == self.refuse[0]:
            code, self.refuse = self.refuse[1], None
            if create and code == 409:
                return False
            self.refused_in_pass = True
            raise Refused(code)
        return True

    def edit_template(self, dep: Dep, how: str) -> None:
        """Someone edits a child's pod template (``kubectl set image deploy/<child>``), or
        undoes the edit (``kubectl rollout undo``)."""
        original = self.originals.setdefault(dep.name, dep.template)
        edited = self.tpl(9)
        # Its labels stay: the API server refuses a template its selector does not match
        # (make fuzz-for, seed 470401404: an edit after a selector change took a key
        # the child's selector holds out of its pods, which no cluster accepts).
        edited["metadata"]["labels"] = copy.deepcopy(original["metadata"]["labels"])
        dep.template = original if how == "undo" else edited
        dep.generation += 1


ClusterT = TypeVar("ClusterT", bound=Cluster)


def first_revision_runs(c: ClusterT) -> ClusterT:
    """Three reconciles with the Deployment controller acting: the first revision is
    stable and its pods ready (how most named examples begin)."""
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    return c


def plain_deployment(replicas: int, tpl: Mapping[str, Any] | None = None) -> Dep:
    """A Deployment that is not Ramp's, running ``replicas`` ready pods labelled
    ``app: web`` (what the Services selected before the Rollout)."""
    born = T0 - timedelta(minutes=5)
    return Dep(
        name=f"{NAME}-plain",
        revision="plain",
        role=None,
        owner="",
        template=tpl or template(0),
        replicas=replicas,
        created="000000",
        observed_generation=1,
        pods=[Pod(born=born) for _ in range(replicas)],
        ready=replicas,
        current=replicas,
    )


USER_KEY = "tier"
"""A selector key only users add to a Service (no pod carries it: the Service is theirs
to break)."""


def released(result: Plan) -> str:
    """The revision a release this plan started runs: the canary, or the stable when the
    release completed in the same plan (no steps, a promote verb, its pods ready)."""
    completed = any(e.reason == "RolloutCompleted" for e in result.events)
    new = result.status
    return new.canary_revision or (new.stable_revision if completed else None) or ""


def _steps_of(rollout: Rollout) -> list[Any]:
    return rollout.spec.canary.steps


class Oracle:
    """What the planner must honour, kept independently of it, and the checks."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.promoted: set[str] = set()
        """Revisions legitimately stable (the first one, and every proper promotion)."""
        self.ever_promoted = False
        self.aborted: set[str] = set()
        self.progress_at: datetime = T0
        self.seen_counts: tuple[int, ...] | None = None
        self.unrecorded: tuple[datetime, tuple[int, ...] | None] = (T0, None)
        """(g)'s progress and counts before the pass being applied (its status may fail)."""
        self.before: dict[str, tuple[int, int]] = {}
        """Truth before applying: Deployment name → (replicas, ready)."""
        self.before_services: dict[str, dict[str, str]] = {}
        """Truth before applying: Service name → selector."""
        self.checked = 0
        self.history_had_promoted = False
        self.acted: set[tuple[str, str]] = set()
        """Tokens (verb, value) that had their effect: never again (a lost status too)."""
        self.taken_over: set[str] = set()
        """Services whose pin selected some of Ramp's ready pods: from then on they serve
        the Rollout, not the plain Deployment they selected before."""

    def fail(self, what: str) -> None:
        raise Violation(what)

    # -- before the plan is applied --------------------------------------------------

    def before_apply(self, observed: Observed, view: View, result: Plan) -> None:
        c = self.c
        self.before = {d.name: (d.replicas, d.ready) for d in c.owned()}
        self.before_services = {n: dict(sel) for n, sel in c.services.items() if sel is not None}
        self.history_had_promoted = any(
            h.annotations.get(PROMOTED_ANNOTATION) for h in c.history.values()
        )
        # (d) every status the planner produces is valid against the CRD's schema.
        errors = schema_errors(result.status.to_k8s(), status_schema())
        if errors:
            self.fail(f"(d) status invalid against the CRD: {errors[:3]}")
        # (g) a ProgressDeadlineExceeded abort only without progress within the deadline.
        old = observed.rollout.status or RolloutStatus()
        new = result.status
        children = {ch.revision: ch for ch in observed.children if ch.owner == UID}

        def counts(rev: str | None) -> tuple[int, int]:
            ch = children.get(rev or "")
            return (ch.ready, ch.current) if ch and not ch.deleting else (0, 0)

        seen = (*counts(new.canary_revision), *counts(new.stable_revision))
        identity = (new.canary_revision, new.stable_revision, new.current_step_index)
        key = (*seen, *[hash(x) for x in identity])
        stale = view.body["metadata"]["resourceVersion"] != str(c.rv)  # its status conflicts
        self.unrecorded = (self.progress_at, self.seen_counts)  # see after_apply
        gone = [
            rev not in children or children[rev].deleting
            for rev in (new.canary_revision, new.stable_revision)
        ]
        if stale:
            pass  # a plan from a stale body writes nothing: it is no progress (issue 19 fuzz)
        elif self.lost_only(key, gone):
            pass  # a child deleted by someone is no progress (make fuzz-for, seed 127736494)
        elif key != self.seen_counts or (old.progressed_at is None and old.canary_revision):
            self.progress_at = c.now
        if not stale:
            self.seen_counts = key
        pde = any(  # a new abort (not one the history remembers)
            e.reason == "Aborted" and "progressDeadlineSeconds" in e.message for e in result.events
        )
        deadline = timedelta(seconds=observed.rollout.spec.deadline_seconds)
        # (g) judges what is carried out: a plan from a stale body cannot write its status
        # (Conflict; the shell plans again from a fresh read), as in the blue-green oracle.
        if pde and not stale and c.now - self.progress_at < deadline:
            self.fail(
                f"(g) ProgressDeadlineExceeded at {c.now - T0} although progress was made at "
                f"{self.progress_at - T0} (deadline {deadline})"
            )

    def lost_only(self, key: tuple[int, ...], gone: list[bool]) -> bool:
        """Whether the counts changed only for a revision whose child is gone now (deleted
        by someone, or deleting): the same canary, stable and step otherwise."""
        seen = self.seen_counts
        if seen is None or seen == key or seen[4:] != key[4:]:
            return False
        changed = [seen[i : i + 2] != key[i : i + 2] for i in (0, 2)]
        return all(g for g, c in zip(gone, changed, strict=True) if c)

    # -- after the plan was applied ----------------------------------------------------

    def after_apply(self, observed: Observed, view: View, result: Plan, done: set[str]) -> None:
        c = self.c
        self.checked += 1
        if c.foreign_writes:
            self.fail(f"a foreign Deployment was touched: {c.foreign_writes}")
        rollout = observed.rollout
        old = rollout.status or RolloutStatus()
        new = result.status
        events = [e.reason for e in result.events]
        full = "events" in done
        applied_status = "status" in done and c.status == new.to_k8s()
        if "Initialized" in events and not self.ever_promoted and not self.history_had_promoted:
            self.promoted.add(new.stable_revision or "")  # the very first revision
        if applied_status and new.stable_revision:
            self.ever_promoted = True
        if "events" in done or applied_status:
            self.tokens(observed, result, full)
            self.steps(observed, result)
        if full or applied_status:
            # What a plan decided holds once its status is written, even if a restart cut
            # its Events (the shell writes them last): the blue-green oracle's rule too.
            for e in result.events:
                if e.reason == "Aborted":
                    self.aborted.add(old.canary_revision or new.aborted_revision or "")
                if e.reason in ("Retried", "RolloutStarted", "CanaryReplaced"):
                    self.aborted.discard(released(result))
        if applied_status:
            self.progress_after(result)
        else:
            self.unaccepted(result, done)
        self.replicas(observed, result, done)
        if applied_status and new.stable_revision not in self.promoted:
            self.fail(
                f"(a) revision {new.stable_revision} is stable but was never promoted "
                f"(promoted: {sorted(self.promoted)}; events {events})"
            )
        if full and "scales" in done:
            self.services(observed, result)
        elif "services" in done:
            # A pass cut after its Service writes is not judged, but a pin it made that
            # selects a ready pod of the Rollout is a takeover all the same (make fuzz-for,
            # seed 153825904: a restart after the pin, then the pinned pod went unready
            # beside the adopted Deployment's; test_regressions_services).
            self.note_takeovers()
        self.round2(observed, view, result, done)

    def round2(self, observed: Observed, view: View, result: Plan, done: set[str]) -> None:
        """Issue 19: what a user sees of promotions, history and edited children.

        (k) a revision becomes stable (or the active Service switches to it) only if it
        ran a ready pod of its own template before (``Cluster.proven``, from the pods);
        (l) no ControllerRevision says ``promoted-at`` of a revision no accepted status
        made stable; (m) the Rollout is not Healthy while a child it saw runs a pod
        template that is not its revision's."""
        c = self.c
        new = result.status
        events = [e.reason for e in result.events]
        recorded = "events" in done or ("status" in done and c.status == new.to_k8s())
        if recorded:
            for reason, rev in (
                ("RolloutCompleted", new.stable_revision),
                ("Switched", (new.blue_green.active_revision if new.blue_green else None)),
            ):
                if reason in events and rev and rev not in c.proven:
                    self.fail(
                        f"(k) revision {rev} {reason} but never ran a ready pod of its "
                        f"template (proven: {sorted(c.proven)})"
                    )
        for cr in c.history.values():
            if cr.annotations.get(PROMOTED_ANNOTATION) and cr.revision not in self.promoted:
                self.fail(
                    f"(l) the history marks {cr.revision} promoted, which no accepted status "
                    f"made stable (promoted: {sorted(self.promoted)})"
                )
        healthy = "status" in done and c.status == new.to_k8s() and new.phase == "Healthy"
        if healthy and c.drifted:
            self.fail(f"(m) Healthy while {sorted(c.drifted)} run an edited pod template")

    def unaccepted(self, result: Plan, done: set[str]) -> None:
        """The status was not accepted (refused, a conflict, a restart before it): the
        planner recorded nothing of this pass, and compares the next pass's counts with
        the last status accepted. A change it could not record that leaves no net trace by
        then (a child deleted and recreated, whose create was the progress; a release
        replaced and back, make fuzz-for, seed 224425150) is known to no one reading the
        cluster: (g) counts from what the API server accepted, as the planner does."""
        if result.write_status and "status" not in done:
            self.progress_at, self.seen_counts = self.unrecorded

    def progress_after(self, result: Plan) -> None:
        """A scale applied, or a Deployment created with pods, is progress."""
        grown = [
            r
            for r in result.creates
            if (result.replicas or {}).get(r, 0) > 0 and r in self.c.created_now
        ]  # a create that made nothing (it existed, or was refused) is no progress
        if result.scales or grown:
            self.progress_at = self.c.now

    def tokens(self, observed: Observed, result: Plan, full: bool) -> None:
        """(e) a token consumed has its effect once, or is reported as not applicable."""
        old = (observed.rollout.status or RolloutStatus()).handled_tokens
        new = result.status.handled_tokens
        effects = {
            "promote": ("Promoted", "PromotedFull"),
            "promote-full": ("PromotedFull",),
            "abort": ("Aborted",),
            "retry": ("Retried",),
        }
        for verb, reasons in effects.items():
            attr = verb.replace("-", "_")
            before = getattr(old, attr) if old else None
            after = getattr(new, attr) if new else None
            fresh = after is not None and after != before
            ignored = f"{''.join(p.capitalize() for p in verb.split('-'))}Ignored"
            hits = [
                e
                for e in result.events
                if e.reason in reasons
                and (verb != "abort" or "by request" in e.message)
                and not (verb == "promote" and e.reason == "PromotedFull" and not fresh)
            ]
            if verb == "promote" and not fresh:
                hits = [e for e in hits if e.reason == "Promoted"]
            if fresh and full and not hits and not any(e.reason == ignored for e in result.events):
                self.fail(
                    f"(e) token {verb}={after} recorded as handled without its effect or "
                    f"an {ignored} Event (events: {[e.reason for e in result.events]})"
                )
            if not fresh and hits:
                self.fail(f"(e) {verb} had an effect without a fresh token: {hits}")
            if len([e for e in hits if e.reason == reasons[0]]) > 1:
                self.fail(f"(e) token {verb} had its effect twice: {hits}")
            if fresh and full and hits:
                if (verb, after) in self.acted:
                    self.fail(f"(e) token {verb}={after} had its effect again: {hits}")
                self.acted.add((verb, after or ""))

    def steps(self, observed: Observed, result: Plan) -> None:
        """(a) steps are passed only when they allow it; aborted revisions are not promoted."""
        old = observed.rollout.status or RolloutStatus()
        new = result.status
        reasons = [e.reason for e in result.events]
        promoted = "RolloutCompleted" in reasons
        canary = old.canary_revision
        # A new template after the abort starts another revision's steps (it may even
        # complete in the same plan, with no steps): judged below like any other.
        anew = any(e.reason in ("RolloutStarted", "CanaryReplaced") for e in result.events)
        if promoted:
            rev = new.stable_revision or ""
            again = "Retried" in reasons or (anew and rev == released(result))
            if rev in self.aborted and not again:
                self.fail(f"(a) aborted revision {rev} promoted")
        if not canary or (not promoted and new.canary_revision != canary):
            if promoted:
                self.promoted.add(new.stable_revision or "")
            return
        if old.aborted_revision == canary and "Retried" not in reasons and not anew:
            if promoted:
                self.fail(f"(a) aborted canary {canary} promoted")
            return
        steps = _steps_of(observed.rollout)
        start = old.current_step_index or 0
        restarted = any(
            e.reason in ("RolloutStarted", "CanaryReplaced")
            or (e.reason == "Retried" and "restarts" in e.message)
            for e in result.events
        )
        if restarted:
            start = 0
            started_at = self.c.now
        else:
            started_at = parse_time(old.step_started_at) if old.step_started_at else self.c.now
        end = len(steps) if promoted else (new.current_step_index or 0)
        full = "PromotedFull" in reasons
        skip = "Promoted" in reasons
        for k in range(start, min(end, len(steps))):
            step = steps[k]
            if full or (skip and k == start):
                continue
            if step.pause is not None:
                if step.pause.duration is None:
                    self.fail(f"(a) indefinite pause step {k + 1} passed without promote")
                left = started_at + parse_duration(step.pause.duration) - self.c.now
                if k != start or left > timedelta(0):
                    self.fail(f"(a) pause step {k + 1} passed {left} early")
            elif step.analysis is not None:
                run = next(
                    (
                        r
                        for r in old.analysis_runs or []
                        if r.name == f"step-{k + 1}" and r.revision == canary
                    ),
                    None,
                )
                measured = observed.rollout.status
                run = next(
                    (
                        r
                        for r in (measured.analysis_runs if measured else None) or []
                        if r.name == f"step-{k + 1}" and r.revision == canary
                    ),
                    run,
                )
                if run is None or not run.metrics or any(m.phase != "Passed" for m in run.metrics):
                    self.fail(f"(a) analysis step {k + 1} passed without a Passed run")
        if promoted:
            self.promoted.add(new.stable_revision or "")

    def replicas(self, observed: Observed, result: Plan, done: set[str]) -> None:
        """(a) unproven revisions never grow past their step, (b) availability, (c) surge."""
        c = self.c
        rollout = observed.rollout
        new = result.status
        spec = rollout.spec
        total = spec.replicas
        try:
            limits = Limits.resolve(total, spec.canary.surge, spec.canary.unavailable)
        except ValueError:
            limits = Limits(total=total, surge=1, unavailable=0)
        after = {d.name: (d.replicas, d.ready) for d in c.owned()}
        if "scales" not in done and "creates" not in done:
            return
        aborting = new.aborted_revision is not None and new.aborted_revision == new.canary_revision
        immediate = spec.canary.abort_scale_down == "Immediate"
        # (a) a revision not proven never grows past what its step allows.
        steps = _steps_of(rollout)
        # A pass that read a lagging index planned each child from the replicas it showed:
        # a scale below those, onto a child someone scaled down since (unseen), is no
        # growth of the pass's (make fuzz-for, seed 703775334; the next pass sees it).
        seen = {ch.name: ch.replicas for ch in observed.children} if c.view_lagged else {}
        for d in c.owned():
            if d.revision in self.promoted:
                continue
            before = self.before.get(d.name, (0, 0))[0]
            allowed = max(before, seen.get(d.name, 0))
            if d.revision == new.canary_revision and not aborting:
                index = new.current_step_index or 0
                allowed = max(allowed, split_replicas(total, step_weight(steps, index)).canary)
            if d.replicas > allowed:
                self.fail(
                    f"(a) unproven revision {d.revision} grew {before}->{d.replicas} "
                    f"(allowed {allowed}; step {new.current_step_index}, aborted={aborting})"
                )
        # (b) ready pods never taken below R - maxUnavailable (only by faults).
        serving_before = sum(min(r, rd) for r, rd in self.before.values())
        serving_after = sum(min(r, rd) for r, rd in after.values())
        floor = total - limits.unavailable
        # Ready pods a lagging index showed the planner that were gone (a child someone
        # scaled down or deleted since its view) cannot be accounted for in this plan: the
        # next pass that sees them is judged (make fuzz-for, seed 823965682: the stable
        # scaled to 0 by hand, the index still showing it 3/3, the replaced canary drained;
        # seed 676920816: the stable deleted, the index still showing it).
        seen_ready = {ch.name: ch.ready for ch in observed.children if ch.owner == UID}
        unseen_loss = (
            sum(max(0, n - self.before.get(name, (0, 0))[1]) for name, n in seen_ready.items())
            if c.view_lagged
            else 0
        )
        if not (aborting and immediate) and (
            serving_after + unseen_loss < min(serving_before, floor)
        ):
            self.fail(
                f"(b) ready pods taken from {serving_before} to {serving_after} "
                f"(floor {floor}): {self.before} -> {after}"
            )
        # (c) specified pods within R + maxSurge (an abort may restore the stable first).
        specified_before = sum(r for r, _ in self.before.values())
        specified_after = sum(r for r, _ in after.values())
        ceiling = total + limits.surge
        if aborting:  # the stable first; the canary and others shrink as it gets ready
            stable_name = child_name(c.cfg.name, new.stable_revision or "")
            going = sum(r for name, (r, _) in self.before.items() if name != stable_name)
            ceiling = max(ceiling, total + going)
        # Only once the scales are applied: a restart between a create (or a grow) and the
        # shrink that makes room for it leaves the surge exceeded until the next reconcile
        # (the shell creates first and grows before it shrinks) -- known, not checked.
        # Pods a lagging index hid from the planner (a child scaled up since the index's
        # view, by someone else or by the planner's previous write) cannot be accounted
        # for in this plan: known (issue 19's report), not checked here.
        seen = {ch.name: ch.replicas for ch in observed.children if ch.owner == UID}
        hidden = sum(max(0, r - seen[name]) for name, (r, _) in self.before.items() if name in seen)
        ceiling += hidden
        # The room a plan makes by deleting an idle child (no pods yet) counts once the
        # deletes are carried out too: the shell deletes after it scales (make fuzz-for,
        # seed 644312343: a rollback grew the stable, a restart came before the delete of
        # the canary it replaced) -- the same known gap as above.
        carried = "scales" in done and ("deletes" in done or not result.delete)
        if carried and specified_after > max(ceiling, specified_before):
            self.fail(
                f"(c) {specified_after} pods specified, more than R+surge={ceiling} "
                f"(before {specified_before}): {self.before} -> {after}"
            )

    def services(self, observed: Observed, result: Plan) -> None:
        """(f) What a user sees: a Service Ramp pinned (its selector holds the revision key)
        matches, with its whole selector, a ready pod whenever the app has one."""
        c = self.c

        def ready(d: Dep) -> int:
            return min(d.ready, d.replicas)

        for name, selector in c.services.items():
            self.judge_service(name, selector, ready, sum(ready(d) for d in c.owned()))

    def given_back(self) -> None:
        """(w) A Rollout deleted while it held a Deployment (``workloadRef``) is gone only
        once it gave it back: unpaused and no longer marked as held (found by that mark
        when nothing names it any more: its workloadRef removed and its status lost)."""
        c = self.c
        held = c.held.paused or MANAGED_ANNOTATION in c.held.annotations
        if c.held_at_deletion and c.cfg.workload_ref and c.plain is not None and held:
            self.fail(f"(w) the Rollout is gone and left its Deployment held: {c.held}")

    def judge_service(
        self,
        name: str,
        selector: Mapping[str, str] | None,
        ready: Any,
        ramp_ready: int,
    ) -> None:
        """Fail when ``selector`` matches no ready pod while the app has ``ramp_ready``
        eligible ready pods of the Rollout, or ready pods of the plain Deployment — those
        count until Ramp's pods first served through this Service, and again while the
        Rollout is being deleted. Pods are matched by the whole selector and their labels,
        never by the revision key alone; ``ready(dep)`` counts a Deployment's ready pods."""
        c = self.c
        if selector is None or REVISION_LABEL not in selector:
            self.taken_over.discard(name)  # unpinned (or re-created): a new takeover
            return
        if USER_KEY in selector:
            return
        owned = [
            d for d in c.owned() if all(c.pod_labels(d).get(k) == v for k, v in selector.items())
        ]
        # Whether this pass is judged or not, a pin that selects a ready pod of the Rollout
        # is a takeover (make fuzz-for, seed 134641869: a pass whose second write was
        # refused pinned the Services to the stable's ready pod, beside the adopted
        # Deployment's going pod; the stable was deleted next, and its Services were judged
        # as if the adopted Deployment's pods still counted for them).
        taken = name in self.taken_over
        if any(ready(d) for d in owned):
            self.taken_over.add(name)
        if c.refused_in_pass:
            # The API server refused a write of this pass, which stopped there (the pin
            # that would have fixed this Service among the writes not made): judged after
            # the next pass, which plans again at once.
            return
        if c.view_lagged and self.before_services.get(name) == dict(selector):
            # This pass read a child index that lagged behind the truth and left the
            # Service as it was: what someone did to the children since (a canary
            # deleted) is judged after a pass that could see it (make fuzz-for, seed
            # 768349580; test_regressions_services).
            return
        held = (self.before_services.get(name) or {}).get(REVISION_LABEL)
        if c.view_lagged and held != selector[REVISION_LABEL] and not c.seen_ready.get(held or ""):
            # Moved off a revision whose ready pods the lagging index did not show yet (a
            # pod ready again since): judged after the next pass, which sees them (make
            # fuzz-for, seed 338110868; test_regressions_services).
            return
        moved_to = selector[REVISION_LABEL]
        live = {d.revision for d in c.owned()}
        if c.view_lagged and held != moved_to and moved_to in c.seen_live - live:
            # Moved onto a revision whose child the lagging index showed live, deleted
            # since (unseen): judged after the next pass, which sees the deletion (make
            # fuzz-for, seed 899243642; test_regressions_services).
            return
        plain = c.plain if c.plain is not None and not c.plain.deleting else None
        matched = sum(ready(d) for d in owned)
        if plain is not None and all(c.pod_labels(plain).get(k) == v for k, v in selector.items()):
            matched += ready(plain)
        app = ramp_ready
        if plain is not None and (not taken or self.letting_go()):
            app += ready(plain)
        if matched == 0 and app > 0:
            self.fail(
                f"(f) Service {name} ({selector}) selects no ready pod while the app has {app} "
                f"ready ({ramp_ready} of the Rollout's)"
            )

    def note_takeovers(self) -> None:
        """Record, without judging, the Services whose pin selects a ready pod of the
        Rollout now (and forget those no longer pinned): from then on the adopted
        Deployment's pods no longer count for them."""
        c = self.c
        for name, selector in c.services.items():
            if selector is None or REVISION_LABEL not in selector:
                self.taken_over.discard(name)
            elif any(
                min(d.ready, d.replicas)
                for d in c.owned()
                if all(c.pod_labels(d).get(k) == v for k, v in selector.items())
            ):
                self.taken_over.add(name)

    def letting_go(self) -> bool:
        """A Rollout that held a Deployment when it was deleted: its Services go back to
        the app. (A Rollout without ``workloadRef`` -- also one whose workloadRef was
        removed and given back -- has no finalizer: it is gone before the operator sees
        the deletion, and its Services keep Ramp's key; docs/safety.md says so.)"""
        return self.c.held_at_deletion


def new_revision(image: int, invalid: bool = False) -> str:
    return revision_hash(template(image, invalid))
