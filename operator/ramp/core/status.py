"""The end of every path: children to keep, Services to pin, counts, conditions, phase.

:func:`phase` is the one function that derives the phase from the rest of the status
(Argo's ``CalculateRolloutPhase``). Every list in the status is bounded here by
construction: analysis runs (the current step's and the background's), measurements
(the last 64), conditions (a fixed set).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from ramp.api.rollout import Condition, Phase, RolloutStatus, Weights
from ramp.core.context import PlanContext
from ramp.core.gating import BACKGROUND, POST, PRE, step_run
from ramp.core.model import PROGRESS_GRAIN, Child, Plan, Role, iso, parse_iso
from ramp.core.routers import routers_for
from ramp.core.traffic import ServiceTarget, TrafficIntent, floors, hold_floors

MAX_MEASUREMENTS = 64
CONDITION_TYPES = (
    "Available",
    "Progressing",
    "Paused",
    "Healthy",
    "Aborted",
    "InvalidSpec",
    "StableMissing",
    "ForeignChildren",
    "TemplateDrift",
)


class StatusMixin(PlanContext):
    def finish(self, replicas: dict[str, int] | None) -> Plan:
        st = self.st
        result = Plan(status=st, events=self.events)
        if replicas is not None:
            full = {c.revision: 0 for c in self.live_children}
            full.update({k: v for k, v in replicas.items() if k})
            for revision in self.creates:
                full.setdefault(revision, 0)
            result.delete, result.delete_history = self.prune(full)
            gone = {c.revision for c in self.live_children if c.name in result.delete}
            for revision in gone:
                full.pop(revision, None)
            full = self.hold_floors(full)
            result.replicas = full
            for revision in full:
                result.roles[revision] = self.role_of(revision)
            moves = [
                (rev, n)
                for rev, n in full.items()
                if rev in self.children and self.children[rev].replicas != n
            ]
            # Shrink first, then grow (see Plan.scales): both limits hold in between.
            moves.sort(key=lambda kv: kv[1] > self.children[kv[0]].replicas)
            result.scales = moves
            result.creates = {
                rev: tpl
                for rev, tpl in self.creates.items()
                if rev not in self.children and rev not in self.going
            }
            # A create planned again for a canary the last status already waited for (it
            # did not show: refused for now, or its name is taken by a look-alike) is no
            # progress: the deadline still ends a rollout that cannot get its canary.
            again = self.old.canary_revision if not self.old.canary_replicas else None
            fresh = [rev for rev in result.creates if rev != again or not self.old.progressed_at]
            self.scaled_is_progress(bool(moves or fresh))
        self.route(result)
        result.history = list(self.history_writes.values())
        result.measure = list(dict.fromkeys(self.measure))
        self.bound_lists()
        self.fill_counts()
        if self.spec.blue_green:
            self.bg_counts()
        self.fill_conditions()
        st.phase = phase(st)
        if st.phase == Phase.PROGRESSING:
            # While a rollout moves, a role label changes only with a scale of its child
            # (one patch); at rest (Healthy, Paused, Aborted) it is corrected on its own.
            moving = {revision for revision, _ in result.scales}
            for revision in [r for r in result.roles if r in self.children and r not in moving]:
                del result.roles[revision]
        result.requeue_after = self.requeue
        return result

    def role_of(self, revision: str) -> Role:
        """The role label of a revision's Deployment. At weight 100 it is where the rollout
        heads (the canary ``stable``, the stable ``previous``): written with the canary's
        last scale up and the stable's last scale down, so the promotion patches no label.
        The status, not the label, says which revision is stable."""
        st = self.st
        heading = self.full_weight and st.canary_revision != st.aborted_revision
        if revision == st.stable_revision:
            return "previous" if heading else "stable"
        if revision == st.canary_revision:
            return "stable" if heading else "canary"
        return "previous"

    def scaled_is_progress(self, scaled: bool) -> None:
        """A scale or a create applied is progress too (a stable recreated with the same
        counts as before it was deleted shows no other change), recorded once per grain
        like the rest (see ``progress_deadline``)."""
        since = parse_iso(self.st.progressed_at)
        if not scaled or since is None:
            return
        grain = timedelta(seconds=self.spec.deadline_seconds) * PROGRESS_GRAIN
        if self.now - since >= grain:
            self.st.progressed_at = iso(self.now)

    def bound_lists(self) -> None:
        st = self.st
        keep = {BACKGROUND, step_run(st.current_step_index or 0), PRE, POST}
        runs = [
            r for r in st.analysis_runs or [] if r.name in keep and r.revision == st.canary_revision
        ]
        st.analysis_runs = runs or None
        if st.measurements:
            st.measurements = st.measurements[-MAX_MEASUREMENTS:]

    def hold_floors(self, replicas: dict[str, int]) -> dict[str, int]:
        """A revision a router still sends requests to keeps the pods its share needs (see
        :mod:`ramp.core.traffic`)."""
        weights = self.traffic_weights()
        for router in routers_for(self.spec):
            acknowledged = router.acknowledged(self)
            if acknowledged is not None:
                replicas = hold_floors(replicas, floors(acknowledged, weights, self.total))
        return replicas

    def route(self, result: Plan) -> None:
        """Every router makes the data plane carry the strategy's intent."""
        if self.spec.blue_green:
            intent = self.bg_intent() if result.replicas is not None else TrafficIntent()
        else:
            # The workload left as it is (invalid spec, stable missing): pods still come
            # and go, and a pinned Service still follows the ready ones.
            as_is = {c.revision: c.replicas for c in self.live_children}
            intent = self.canary_intent(as_is if result.replicas is None else result.replicas)
        for router in routers_for(self.spec):
            router.route(self, intent, result)

    def canary_intent(self, replicas: dict[str, int]) -> TrafficIntent:
        """Pinned Services never select a revision with no ready pod while another has
        (counting the pods that stay once ``replicas`` is applied: at weight 100 before
        promotion the stable Service follows the canary as the stable goes to zero). A
        Service not pinned yet is narrowed once the revision runs all the ready pods it is
        planned to run (at least one)."""
        st = self.st
        strategy = self.spec.canary
        canary = st.canary_revision if st.aborted_revision != st.canary_revision else None
        stable = st.stable_revision

        # Any other revision with ready pods comes last (e.g. a drained canary while the
        # stable it was rolled back to has none ready yet): never an empty Service.
        others = sorted(
            self.children, key=lambda r: -min(self.children[r].ready, replicas.get(r, 0))
        )

        def choose(primary: str | None, fallback: str | None) -> str | None:
            for revision in (primary, fallback, *others):
                child = self.child(revision)
                if child is not None and min(child.ready, replicas.get(child.revision, 0)) > 0:
                    return revision
            return primary or fallback

        def target(service: str | None, revision: str | None) -> ServiceTarget:
            narrow_at = max(1, min(self.total, replicas.get(revision or "", 0)))
            return ServiceTarget(service, revision, narrow_at)

        return TrafficIntent(
            targets=(
                target(strategy.stable_service, choose(stable, canary)),
                target(strategy.canary_service, choose(canary or stable, stable)),
            ),
            weights=self.traffic_weights(),
        )

    def fill_counts(self) -> None:
        st = self.st
        canary = self.child(st.canary_revision)
        stable = self.child(st.stable_revision)
        st.replicas = sum(c.current for c in self.live_children)
        st.ready_replicas = sum(min(c.ready, c.current) for c in self.live_children)
        st.canary_replicas = canary.current if canary else 0
        st.canary_ready_replicas = canary.ready if canary else 0
        st.stable_replicas = stable.current if stable else 0
        st.stable_ready_replicas = stable.ready if stable else 0
        if st.canary_revision is None:
            # No release: all the traffic is the stable revision's (as Argo Rollouts shows
            # a completed rollout: 100 / 100), actually so once one of its pods is ready.
            st.weights = Weights(desired=100, actual=100 if st.stable_ready_replicas else 0)
        elif st.weights is None:
            st.weights = Weights(desired=0, actual=0)

    def template_drift(self) -> None:
        """Children whose pod template someone edited serve pods that are not their
        revision's: reported (condition ``TemplateDrift``, the phase ``Degraded``, a Warning
        Event) until the template is restored or the Deployment deleted (Ramp recreates it
        from the revision history)."""
        message = drift_message(self.live_children)
        if message:
            message += (
                "; Ramp never changes a child's pod template: restore it (kubectl rollout "
                "undo deployment/<name>)"
            )
        self.conditions["TemplateDrift"] = (
            bool(message),
            "PodTemplateEdited" if message else "NoDrift",
            message,
        )
        old = next((c for c in self.old.conditions or [] if c.type == "TemplateDrift"), None)
        if message and (old is None or old.message != message[:1024]):
            self.event("TemplateDrift", message, warning=True)

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
        self.conditions.setdefault("InvalidSpec", (False, "SpecValid", ""))
        self.conditions.setdefault("StableMissing", (False, "StablePresent", ""))
        foreign = ", ".join(self.foreign[:8])
        self.conditions["ForeignChildren"] = (
            bool(self.foreign),
            "LookAlikeDeployments" if self.foreign else "NoLookAlikes",
            f"Deployments labelled for this Rollout but not owned by it (never touched): {foreign}"
            if self.foreign
            else "",
        )
        self.template_drift()
        paused = self.paused_reason is not None
        self.conditions["Paused"] = (paused, self.paused_reason or "NotPaused", st.message or "")
        invalid = (
            self.conditions["InvalidSpec"][0]
            or self.conditions["StableMissing"][0]
            or self.conditions["TemplateDrift"][0]
        )
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
        prev_foreign = old.get("ForeignChildren")
        if self.foreign and (
            prev_foreign is None or prev_foreign.message != self.conditions["ForeignChildren"][2]
        ):
            self.event("ForeignChildren", self.conditions["ForeignChildren"][2], warning=True)
        result = []
        for ctype in CONDITION_TYPES:
            value, reason, message = self.conditions[ctype]
            status: Literal["True", "False"] = "True" if value else "False"
            prev = old.get(ctype)
            since = prev.last_transition_time if prev and prev.status == status else None
            result.append(
                Condition(
                    type=ctype,
                    status=status,
                    reason=reason,
                    message=message[:1024],
                    last_transition_time=since or iso(self.now),
                )
            )
        st.conditions = result
        if st.message is not None:
            st.message = st.message[:1024]


def drift_message(children: list[Child]) -> str:
    """The ``TemplateDrift`` message: which children serve pods that are not their
    revision's ("" when none)."""
    drifted = [c for c in children if c.drift and (c.replicas or c.current)]
    return "; ".join(
        f"Deployment {c.name} (revision {c.revision}): {c.drift}" for c in drifted[:4]
    ) + ("; ..." if len(drifted) > 4 else "")


def phase(status: RolloutStatus) -> Phase:
    """The phase, derived from the rest of the status (conditions and revisions).

    Order of precedence: Degraded (invalid spec, stable missing, template drift) > Aborted >
    Paused > Progressing > Healthy.
    """
    conditions = {c.type: c.status == "True" for c in status.conditions or []}
    if (
        conditions.get("InvalidSpec")
        or conditions.get("StableMissing")
        or conditions.get("TemplateDrift")
    ):
        return Phase.DEGRADED
    if status.aborted_revision and status.aborted_revision == status.canary_revision:
        return Phase.ABORTED
    if conditions.get("Paused"):
        return Phase.PAUSED
    if conditions.get("Progressing") or status.canary_revision:
        return Phase.PROGRESSING
    return Phase.HEALTHY
