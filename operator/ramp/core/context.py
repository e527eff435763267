"""The state one planning pass shares between its concerns (a base for the mixins).

A pass is a straight sequence (see :mod:`ramp.core.plan`); the concerns it calls —
history, abort and drain, steps and gates, status — live in their own modules as mixins
of this base, which holds the inputs, the status being built and the small helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ramp.api.analysis import AnalysisRef
from ramp.api.labels import PREFIX, revision_hash
from ramp.api.rollout import HandledTokens, RolloutSpec, RolloutStatus, Step
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


class PlanContext:
    """Inputs, the status being built and the helpers every concern uses."""

    def __init__(self, obs: Observed, now: datetime) -> None:
        self.obs = obs
        self.now = now
        self.spec: RolloutSpec = obs.rollout.spec
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
        try:
            self.limits = Limits.resolve(
                self.total, self.spec.canary.surge, self.spec.canary.unavailable
            )
        except ValueError:  # reported as an invalid spec; moves stay within one pod
            self.limits = Limits(total=self.total, surge=1, unavailable=0)
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
        scale of each and the promotion writes none (see ``StatusMixin.role_of``)."""

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

    def serving(self, revision: str | None) -> int:
        c = self.child(revision)
        return c.serving if c else 0

    def steps(self) -> list[Step]:
        return self.spec.canary.steps

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

    # -- implemented by the concerns -----------------------------------------------

    def finish(self, replicas: dict[str, int] | None) -> Plan:
        raise NotImplementedError

    def abort(self, reason: str, message: str) -> None:
        raise NotImplementedError

    def aborted(self) -> Plan:
        raise NotImplementedError

    def restart_canary(self, reason: str, message: str) -> None:
        raise NotImplementedError

    def clear_canary(self) -> None:
        raise NotImplementedError

    def warn_weight(self, index: int) -> None:
        raise NotImplementedError

    def progress_deadline(self) -> datetime:
        raise NotImplementedError

    def gate_outcome(
        self, run: str, ref: AnalysisRef, what: str, replicas: dict[str, int]
    ) -> Plan | None:
        raise NotImplementedError

    def bg_aborted(self) -> Plan:
        raise NotImplementedError

    def bg_intent(self) -> TrafficIntent:
        raise NotImplementedError

    def bg_counts(self) -> None:
        raise NotImplementedError

    def prune(self, replicas: dict[str, int]) -> tuple[list[str], list[str]]:
        raise NotImplementedError


def _camel(verb: str) -> str:
    return "".join(part.capitalize() for part in verb.split("-"))
