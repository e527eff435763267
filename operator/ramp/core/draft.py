"""The draft of one planning pass: its inputs, the chosen strategy, the status being
built and what the pass decided so far.

A pass is a straight sequence (see :mod:`ramp.core.plan`); the concerns it calls --
history, abort and drain, gates, status, the workload -- are plain functions over a
:class:`Draft`, and so are the two strategies (:mod:`ramp.core.canary`,
:mod:`ramp.core.bluegreen`), which the pass reaches through ``draft.strategy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from ramp.api.analysis import AnalysisRef
from ramp.api.labels import PREFIX, revision_hash
from ramp.api.rollout import HandledTokens, RolloutSpec, RolloutStatus
from ramp.core.model import (
    TOKEN_VERBS,
    Child,
    Event,
    HistoryEntry,
    HistoryWrite,
    Observed,
    Plan,
)
from ramp.core.split import Limits, Side
from ramp.core.traffic import TrafficIntent


class Strategy(Protocol):
    """How a new revision replaces the stable one: :class:`ramp.core.canary.strategy.Canary`
    or :class:`ramp.core.bluegreen.strategy.BlueGreen`, chosen once per pass from the spec.
    The pass (:mod:`ramp.core.plan`) does what both share -- identities and history,
    verbs, drains, the invalid spec, the workload -- and asks the strategy for the rest.
    Every method that returns a Plan ends with :func:`ramp.core.status.finish`."""

    name: str
    rollback: bool
    """The ``rollback`` verb applies (it flips back to the warm previous revision)."""

    def problems(self, spec: RolloutSpec) -> str | None:
        """What the schema cannot check of the strategy's part of the spec (None: usable)."""
        ...

    def limits(self, spec: RolloutSpec) -> Limits:
        """How far pods may be over or under ``spec.replicas`` while they shift."""
        ...

    def runs_in_play(self, spec: RolloutSpec, status: RolloutStatus) -> dict[str, AnalysisRef]:
        """The analysis runs the next plan consults, by run name, while a release is live
        (the shell resolves and measures them before planning)."""
        ...

    def services(self, spec: RolloutSpec) -> tuple[str, ...]:
        """The Services the strategy pins (the traffic routers release them)."""
        ...

    def steady(self, draft: Draft) -> Plan:
        """The template is the stable revision's: no release (or a rollback to it)."""
        ...

    def share(self, draft: Draft) -> int:
        """Pods of the live release that count toward the stable's share while other
        revisions drain."""
        ...

    def progress(self, draft: Draft) -> Plan:
        """A release in progress (not aborted, nothing left to drain)."""
        ...

    def hold(self, draft: Draft, reason: str) -> Plan:
        """A live release holds as it is for ``reason`` (an invalid spec): nothing is
        promoted, what judges it (analysis, deadline) still runs."""
        ...

    def aborted(self, draft: Draft) -> Plan:
        """The release is aborted: back to the stable, the release's pods go."""
        ...

    def at_rest(self, draft: Draft, replicas: dict[str, int]) -> dict[str, int]:
        """``replicas`` of a pass that leaves the workload as it is (no release live):
        what else must keep its pods meanwhile."""
        ...

    def draining(self, draft: Draft, others: list[Child], replicas: dict[str, int]) -> None:
        """Other revisions drain (``replicas`` planned for them): keep what still serves."""
        ...

    def restarted(self, draft: Draft) -> None:
        """A release (re)starts: what the strategy keeps of the last one is cleared."""
        ...

    def intent(self, draft: Draft, replicas: Mapping[str, int] | None) -> TrafficIntent:
        """Where traffic goes once ``replicas`` is applied (None: left as it is)."""
        ...

    def counts(self, draft: Draft) -> None:
        """The strategy's own counts and selector in the status (the HPA reads them)."""
        ...

    def describe(self, draft: Draft) -> str:
        """A few words on the release for the Event that starts it."""
        ...


class Draft:
    """Inputs, the status being built and the helpers every concern uses."""

    def __init__(self, obs: Observed, now: datetime, strategy: Strategy) -> None:
        self.obs = obs
        self.now = now
        self.spec: RolloutSpec = obs.rollout.spec
        self.strategy = strategy
        old = obs.rollout.status or RolloutStatus()
        self.old: RolloutStatus = old
        self.st: RolloutStatus = old.model_copy(deep=True)
        self.events: list[Event] = []
        owned = [c for c in obs.children if c.owner == obs.uid]
        self.foreign = sorted(c.name for c in obs.children if c.owner != obs.uid)
        self.going = {c.revision for c in owned if c.deleting}
        """Revisions whose Deployment is being deleted: neither used nor recreated yet."""
        self.live_children = [c for c in owned if not c.deleting]
        self.children = {c.revision: c for c in self.live_children}
        self.total = self.spec.replicas
        self.limits: Limits = strategy.limits(self.spec)
        self.revision = revision_hash(obs.template)
        self.history = {h.revision: h for h in obs.history}
        self.history_writes: dict[str, HistoryWrite] = {}
        self.creates: dict[str, Any] = {}
        self.measure: list[str] = []
        self.requeue: float | None = None
        self.tokens = self._new_tokens()
        self.conditions: dict[str, tuple[bool, str, str]] = {}
        self.paused_reason: str | None = None
        self.full_weight = False
        """The canary's step is at weight 100: its role labels say where the rollout
        heads (canary ``stable``, stable ``previous``), so that they travel with the last
        scale of each and the promotion writes none (see ``ramp.core.status.role_of``)."""

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
        if fresh and self.obs.rollout.status is None:
            # No status (new, or restored from a backup): tokens that are already there
            # may have been acted on before; recorded as handled, never acted on again.
            for verb in fresh:
                self.event(
                    f"{_camel(verb)}Ignored",
                    f"{verb} token present when the status was (re)created: not applied",
                    warning=True,
                )
            return {}
        return fresh

    def defer_tokens(self, *verbs: str) -> None:
        """Tokens this pass cannot act on yet stay unhandled: a later pass acts on them."""
        handled = self.st.handled_tokens
        old = self.old.handled_tokens or HandledTokens()
        for verb in verbs:
            if self.tokens.pop(verb, None) is not None and handled is not None:
                attr = verb.replace("-", "_")
                setattr(handled, attr, getattr(old, attr))

    def token_not_applicable(self, verb: str, why: str) -> None:
        """A token that cannot act here: recorded as handled and said so."""
        if self.tokens.pop(verb, None) is not None:
            self.event(f"{_camel(verb)}Ignored", f"{verb} requested but {why}", warning=True)

    def event(self, reason: str, message: str, warning: bool = False, post: bool = True) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message, post))

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.05)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def child(self, revision: str | None) -> Child | None:
        return self.children.get(revision) if revision else None

    def side(self, revision: str | None) -> Side:
        c = self.child(revision)
        return c.side if c else Side(0, 0)

    def age(self, child: Child) -> tuple[str, int]:
        """What orders children oldest to newest: their creation (a timestamp of one
        second's resolution) and, for two created in the same second, their revision's
        number in the history."""
        entry = self.entry(child.revision)
        return child.created, entry.number if entry is not None else 0

    def serving(self, revision: str | None) -> int:
        c = self.child(revision)
        return c.serving if c else 0

    def entry(self, revision: str | None) -> HistoryEntry | None:
        return self.history.get(revision) if revision else None

    def mark(self, revision: str, **annotations: str | None) -> None:
        """Set marks on a revision's history entry (created from the template if new)."""
        from ramp.api.labels import ABORTED_ANNOTATION, PROMOTED_ANNOTATION

        keys = {"promoted": PROMOTED_ANNOTATION, "aborted": ABORTED_ANNOTATION}
        wanted = {keys[k]: v for k, v in annotations.items()}
        entry = self.entry(revision)
        current = {
            PROMOTED_ANNOTATION: entry.promoted_at if entry else None,
            ABORTED_ANNOTATION: entry.aborted if entry else None,
        }
        previous = self.history_writes.get(revision)
        if previous is not None:
            current.update(previous.annotations)
            wanted = {**previous.annotations, **wanted}
        if entry is not None and all(current.get(k) == v for k, v in wanted.items()):
            return
        template = self.obs.template if revision == self.revision else None
        if entry is None and template is None:
            # An entry written by nobody yet: copy the template its Deployment recorded.
            child = self.child(revision)
            self.history_writes[revision] = HistoryWrite(
                revision, None, wanted, from_child=child.name if child else None
            )
            return
        self.history_writes[revision] = HistoryWrite(revision, template, wanted)

    def traffic_weights(self) -> dict[str, int]:
        """The share of requests the strategy wants per revision (see ``TrafficIntent``)."""
        st = self.st
        live = st.canary_revision if st.canary_revision != st.aborted_revision else None
        weight = st.weights.desired if live and st.weights is not None else 0
        weights = {st.stable_revision or "": 100 - weight, live or "": weight}
        return {revision: share for revision, share in weights.items() if revision}


def _camel(verb: str) -> str:
    return "".join(part.capitalize() for part in verb.split("-"))
