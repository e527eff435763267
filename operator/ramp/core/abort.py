"""Abort, retry and draining old revisions.

An abort restores the stable first (beyond ``maxSurge`` if need be: the known-good
version comes first, bounded by ``R``) and takes the canary to zero as stable capacity
allows, or at once with ``abortScaleDown: Immediate``. Draining revisions that are
neither stable nor canary (a replaced canary, a rollback) stays within ``maxSurge``.
"""

from __future__ import annotations

from ramp.core.context import PlanContext
from ramp.core.model import Plan
from ramp.core.split import Side, Split, next_replicas, split_replicas
from ramp.core.traffic_services import SERVICE_PINS


class AbortMixin(PlanContext):
    def abort(self, reason: str, message: str) -> None:
        st = self.st
        revision = st.canary_revision or self.revision
        st.aborted_revision = revision
        st.abort_reason = reason
        st.abort_message = message
        st.progressed_at = None
        self.mark(revision, aborted=reason)
        self.event("Aborted", f"rollout of {revision} aborted: {message}", warning=True)

    def abort_and_retry_tokens(self) -> None:
        st = self.st
        if self.tokens.get("abort"):
            if st.aborted_revision != st.canary_revision:
                self.abort("UserAbort", "aborted by request (ramp.dev/abort)")
            else:
                self.token_not_applicable("abort", "the rollout is already aborted")
        if self.tokens.get("retry"):
            if st.aborted_revision == st.canary_revision:
                self.restart_canary("Retried", "retry requested: canary restarts at step 1")
            elif self.paused_by_analysis():
                st.analysis_runs = None
                self.event("Retried", "retry requested: the paused analysis measures again")
            else:
                self.token_not_applicable("retry", "the rollout is neither aborted nor paused")

    def paused_by_analysis(self) -> bool:
        return any(
            c.type == "Paused" and c.status == "True" and c.reason.startswith("Analysis")
            for c in self.old.conditions or []
        )

    def aborted(self) -> Plan:
        st = self.st
        for verb in ("promote", "promote-full"):
            self.token_not_applicable(verb, "the rollout is aborted (retry it first)")
        self.token_not_applicable("rollback", "the rollout is aborted already")
        if self.spec.blue_green is not None:
            return self.bg_aborted()
        immediate = self.spec.canary.abort_scale_down == "Immediate"
        canary, stable = self.side(st.canary_revision), self.side(st.stable_revision)
        # Other revisions still running (a replaced canary) shrink with the canary, as the
        # stable's pods become ready: their ready pods may be all that serves.
        keep = {st.stable_revision, st.canary_revision}
        canary_rev = st.canary_revision if st.canary_revision in self.children else None
        others = sorted(
            (o for o in self.live_children if o.revision not in keep and o.replicas > 0),
            key=lambda o: o.created,
            reverse=True,
        )
        going = Side(
            canary.desired + sum(o.replicas for o in others),
            canary.counted_ready + sum(o.serving for o in others),
        )
        if immediate:
            left, s = 0, self.total
        else:
            left, s = next_replicas(
                self.limits, split_replicas(self.total, 0), going, stable, stable_first=True
            )
        # What is left keeps ready pods first (the canary's too), then others' pods.
        going_children = [*others, *([self.children[canary_rev]] if canary_rev else [])]
        kept = {g.revision: 0 for g in going_children}
        for g in going_children:
            kept[g.revision] = min(g.serving, left)
            left -= kept[g.revision]
        for g in others:
            more = min(g.replicas - kept[g.revision], left)
            kept[g.revision] += more
            left -= more
        c = kept.pop(canary_rev, 0) + left if canary_rev else 0
        ready = self.serving(st.stable_revision)
        st.message = (
            f"aborted: {st.abort_message}; stable {st.stable_revision} {ready}/{self.total} ready"
            f"{'' if c == 0 and canary.desired == 0 else f', canary scaling to 0 ({c} left)'}"
            "; retry with ramp.dev/retry or change the template"
        )
        self.conditions["Aborted"] = (True, st.abort_reason or "Aborted", st.abort_message or "")
        self.conditions["Progressing"] = (False, "RolloutAborted", st.abort_message or "")
        replicas = {st.stable_revision or "": s}
        if st.canary_revision:
            replicas[st.canary_revision] = c
        replicas.update(kept)
        return self.finish(replicas)

    def drain_others(self, stable_target: int) -> Plan | None:
        """Children that are neither stable nor canary go to zero within ``maxSurge``: the
        stable grows into the room they leave, and they shrink as its pods become ready."""
        st = self.st
        keep = {st.stable_revision, st.canary_revision}
        others = [c for c in self.live_children if c.revision not in keep and c.replicas > 0]
        if not others:
            return None
        canary = self.child(st.canary_revision)
        stable = self.side(st.stable_revision)
        c_desired = canary.replicas if canary else 0
        c_ready = canary.serving if canary else 0
        # The canary holds its pods: count them on the stable's side of the shift.
        kept = Side(stable.desired + c_desired, stable.counted_ready + c_ready)
        draining = Side(sum(o.replicas for o in others), sum(o.serving for o in others))
        target = Split(canary=0, stable=stable_target + c_desired, weight=0)
        left, kept_total = next_replicas(self.limits, target, draining, kept)
        replicas: dict[str, int] = {st.stable_revision or "": max(kept_total - c_desired, 0)}
        if canary is not None:
            replicas[canary.revision] = canary.replicas
        for other in sorted(others, key=lambda o: o.created, reverse=True):
            n = min(other.replicas, left)
            replicas[other.revision] = n
            left -= n
        bg = self.spec.blue_green
        if bg is not None:
            # A green replaced after the switch: the active flips back to blue (warm at
            # full size), and the old green goes only once the active Service's
            # EndpointSlices list none of its endpoints.
            release = st.blue_green
            if release is not None and release.active_revision not in keep:
                release.active_revision = st.stable_revision
            listed = SERVICE_PINS.endpoints(self, bg.active_service) or {}
            for other in others:
                if listed.get(other.revision):
                    replicas[other.revision] = other.replicas
                    self.wake_in(1.0)
        names = ", ".join(o.revision for o in others)
        st.message = (
            f"scaling down old revision(s) {names} as stable {st.stable_revision} becomes "
            f"ready ({self.serving(st.stable_revision)}/{stable_target})"
        )
        self.conditions["Progressing"] = (True, "ScalingDownOld", st.message)
        self.defer_tokens("promote", "promote-full")  # acted on once the drain is done
        return self.finish(replicas)
