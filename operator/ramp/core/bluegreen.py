"""Blue-green: green runs beside blue, is verified, and the active Service flips at once.

The release, as the planner walks it (stable = blue, the active revision until the
switch; canary = green):

1. green comes up at ``previewReplicaCount``; the preview Service selects it once it has
   ready pods (the active revision otherwise: the preview never goes empty);
2. the pre-promotion analysis judges green; then promotion is granted — by itself
   (``autoPromotionSeconds`` after green was ready and verified) or by a promote;
3. green goes to full size; **the switch waits for the data plane**: every green pod
   ready and listed as a ready endpoint of the preview Service's EndpointSlices;
4. the active Service flips to green; the post-promotion analysis runs while blue stays
   at full size; a failure (or an abort) flips back to blue at once;
5. once it passes, green is stable; blue stays warm until ``scaleDownDelaySeconds``
   after the switch *and* until the active Service's EndpointSlices list none of its
   endpoints — a ``rollback`` in that window flips back to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from ramp.api.labels import REVISION_LABEL
from ramp.api.rollout import BlueGreenStatus, BlueGreenStrategy, Weights
from ramp.core.context import PlanContext
from ramp.core.gating import POST, PRE
from ramp.core.model import Plan, iso, iso_ceil, parse_iso
from ramp.core.traffic import ServiceTarget, TrafficIntent
from ramp.core.traffic_services import SERVICE_PINS


class BlueGreenMixin(PlanContext):
    def bg(self) -> BlueGreenStrategy:
        strategy = self.spec.blue_green
        assert strategy is not None
        return strategy

    def bg_status(self) -> BlueGreenStatus:
        if self.st.blue_green is None:
            self.st.blue_green = BlueGreenStatus()
        return self.st.blue_green

    def endpoints(self, service: str | None, revision: str | None) -> int | None:
        """Ready endpoints of ``revision`` in ``service`` (None: not known)."""
        listed = SERVICE_PINS.endpoints(self, service)
        return None if listed is None or not revision else listed.get(revision, 0)

    def listed(self, service: str | None) -> Mapping[str, int]:
        """Ready endpoints by revision that ``service`` still sends requests to."""
        return SERVICE_PINS.endpoints(self, service) or {}

    def blue_green(self) -> Plan:
        """A release in progress (template ≠ stable, not aborted)."""
        st, bg, s = self.st, self.bg(), self.bg_status()
        blue, green = st.stable_revision or "", st.canary_revision or ""
        if s.preview_revision is None or s.active_revision is None or s.switched_at is None:
            # Before this release's switch the active side is blue — also when an abort
            # (which flipped back) and a retry come in the same plan.
            s.active_revision = blue
        full, preview = self.total, min(bg.preview_replica_count or self.total, self.total)
        self.bg_tokens(s)
        if s.switched_at is None:
            size = full if s.promoted else preview
            replicas = {blue: full, green: size}
            g = self.child(green)
            ready = g is not None and g.converged and g.replicas == size
            st.weights = Weights(desired=0, actual=0)
            if not ready:
                return self.bg_wait(f"green {g.ready if g else 0}/{size} ready", replicas)
            st.progressed_at = None
            if self.spec.paused:
                return self.bg_held(replicas)
            if g is not None and g.drift:
                s.waiting_for = f"the pod template of {g.name} to be restored (edited)"
                st.message = f"release holds: waiting for {s.waiting_for}"
                self.paused_reason = "TemplateDrift"
                return self.finish(replicas)
            if full == 0:
                # spec.replicas 0 (KEDA, an off-hours scaler): green runs no pod to verify,
                # and a revision that never ran a ready pod is never switched to.
                s.waiting_for = "replicas: spec.replicas is 0, green runs no pod to verify"
                st.message = f"release holds: waiting for {s.waiting_for}"
                self.paused_reason = "NoReplicas"
                return self.finish(replicas)
            if bg.pre_promotion_analysis is not None and not s.skip_analysis:
                held = self.gate_outcome(PRE, bg.pre_promotion_analysis, PRE, replicas)
                if held is not None:
                    s.waiting_for = st.message
                    return held
            if not s.promoted:
                return self.bg_promotion_gate(s, bg, replicas)
            listed = self.endpoints(bg.preview_service, green)
            if listed is not None and listed < full:
                s.waiting_for = f"waiting for {listed}/{full} green endpoints ready"
                st.message = f"switch: {s.waiting_for} in Service {bg.preview_service}"
                self.wake_in(1.0)
                return self.finish(replicas)
            s.switched_at = iso_ceil(self.now)
            s.active_revision = green
            s.waiting_for = None
            self.event("Switched", f"active Service {bg.active_service} switched to {green}")
        replicas = {blue: full, green: full}
        st.weights = Weights(desired=100, actual=100)
        if bg.post_promotion_analysis is not None and not s.skip_analysis:
            held = self.gate_outcome(POST, bg.post_promotion_analysis, POST, replicas)
            if held is not None:
                return held
        return self.bg_complete(s, bg, blue, green)

    def bg_tokens(self, s: BlueGreenStatus) -> None:
        if self.tokens.pop("promote-full", None):
            s.promoted = True
            s.skip_analysis = True
            self.tokens.pop("promote", None)
            self.event(
                "PromotedFull", "promote-full: switching as soon as green is ready, no analysis"
            )
        if self.tokens.get("promote"):
            if s.switched_at is not None:
                self.token_not_applicable("promote", "the switch has happened already")
            else:
                self.tokens.pop("promote")
                s.promoted = True
                self.event("Promoted", "promote requested: the pause is skipped (not analysis)")
        self.token_not_applicable("rollback", "the release has not completed (use abort)")

    def bg_promotion_gate(
        self, s: BlueGreenStatus, bg: BlueGreenStrategy, replicas: dict[str, int]
    ) -> Plan:
        st = self.st
        verified = parse_iso(s.verified_at)
        if verified is None:
            # Recorded rounded up: the status keeps whole seconds, and a wait counted from
            # a rounded-down moment promoted up to a second early after the first pass.
            # The wait counts from the moment recorded, in this pass too: the waitingFor
            # written now and every later pass agree (issue 19: 4 s apart, not 5).
            s.verified_at = iso_ceil(self.now)
            seconds = bg.auto_promotion_seconds or 0
            verified = (parse_iso(s.verified_at) or self.now) if seconds else self.now
        if bg.auto_promotion:
            at = verified + timedelta(seconds=bg.auto_promotion_seconds or 0)
            if self.now >= at:
                s.promoted = True
                self.event("AutoPromoted", "green is ready and verified: promoting")
                self.wake_in(0.05)
                s.waiting_for = "green to reach full size"
                st.message = f"switch: waiting for {s.waiting_for}"
                return self.finish({**replicas, st.canary_revision or "": self.total})
            s.waiting_for = f"auto-promotion at {iso(at)}"
            self.wake_in((at - self.now).total_seconds())
            st.message = f"green ready and verified; {s.waiting_for}"
            return self.finish(replicas)
        s.waiting_for = "waiting for promote"
        self.paused_reason = "WaitingForPromote"
        st.message = (
            "green ready and verified; waiting for promote (kubectl ramp promote, or annotate "
            "ramp.dev/promote=<token>)"
        )
        return self.finish(replicas)

    def bg_wait(self, what: str, replicas: dict[str, int]) -> Plan:
        st, s = self.st, self.bg_status()
        deadline = self.progress_deadline()
        if self.now >= deadline:
            self.abort(
                "ProgressDeadlineExceeded",
                f"no progress within progressDeadlineSeconds={self.spec.deadline_seconds}: {what}",
            )
            return self.aborted()
        self.wake_in((deadline - self.now).total_seconds())
        s.waiting_for = what
        st.message = f"switch: waiting for {what}"
        if st.canary_revision == self.revision and self.revision not in self.children:
            self.creates[self.revision] = self.obs.template
        return self.finish(replicas)

    def bg_held(self, replicas: dict[str, int]) -> Plan:
        st = self.st
        if not st.held_by_spec_paused:
            self.event("Paused", "spec.paused is true: the release holds before the switch")
        st.held_by_spec_paused = True
        self.paused_reason = "SpecPaused"
        st.message = "paused by spec.paused before the switch; set spec.paused to false"
        return self.finish(replicas)

    def bg_complete(self, s: BlueGreenStatus, bg: BlueGreenStrategy, blue: str, green: str) -> Plan:
        st = self.st
        switched = parse_iso(s.switched_at) or self.now
        self.event(
            "RolloutCompleted",
            f"revision {green} is active and stable (was {blue}); {blue} stays warm for rollback",
        )
        st.stable_revision = green  # marked promoted by the next pass (see StepsMixin.promote)
        self.clear_canary()
        s.warm_revision = blue
        s.warm_until = iso(switched + timedelta(seconds=bg.scale_down_delay))
        s.promoted = s.skip_analysis = s.verified_at = s.switched_at = s.aborted_at = None
        s.waiting_for = None
        self.conditions["Progressing"] = (False, "RolloutCompleted", "")
        return self.bg_steady()

    def bg_steady(self) -> Plan:
        """No release: the active revision at full size; a warm blue until its window ends
        and no endpoint of it is left in the active Service. A rollback flips back to it."""
        st, bg, s = self.st, self.bg(), self.bg_status()
        active = st.stable_revision or ""
        s.active_revision = active
        s.preview_revision = active
        st.weights = Weights(desired=0, actual=0)
        replicas = {active: self.total}
        warm = s.warm_revision if s.warm_revision in self.children else None
        until = parse_iso(s.warm_until)
        for revision, served in self.listed(bg.active_service).items():
            child = self.child(revision) if revision not in (active, warm) else None
            if served and child is not None:  # a release left mid-way, still served
                replicas[revision] = child.replicas
                self.wake_in(1.0)
        if self.tokens.get("rollback"):
            if warm and until is not None and self.now < until:
                self.tokens.pop("rollback")
                return self.bg_rollback(warm, active)
            self.token_not_applicable(
                "rollback", "no warm previous revision to flip back to (its window is over)"
            )
        if warm:
            listed = self.endpoints(bg.active_service, warm)
            if (until is not None and self.now < until) or listed:
                replicas[warm] = self.total
                if until is not None and self.now < until:
                    self.wake_in((until - self.now).total_seconds())
                else:
                    self.wake_in(1.0)
                st.message = (
                    f"revision {active} is active; {warm} stays warm until "
                    f"{s.warm_until}{' (its endpoints are still listed)' if listed else ''}"
                )
                if "Progressing" not in self.conditions:
                    self.conditions["Progressing"] = (False, "RolloutCompleted", "")
                return self.finish(replicas)
            self.event("ScaledDown", f"the warm revision {warm} scales down")
        s.warm_revision = None
        s.warm_until = None
        stable = self.child(active)
        if stable is None or not stable.converged or stable.replicas != self.total:
            st.message = f"active revision {active}: {stable.ready if stable else 0}/{self.total}"
            self.conditions.setdefault("Progressing", (True, "ScalingStable", st.message))
        else:
            st.message = f"active revision {active} runs {self.total}/{self.total} ready"
            self.conditions.setdefault("Progressing", (False, "RolloutCompleted", ""))
        return self.finish(replicas)

    def bg_rollback(self, warm: str, active: str) -> Plan:
        st = self.st
        self.event("RolledBack", f"rollback: the active Service flips back to {warm}")
        st.stable_revision = warm
        st.canary_revision = active
        self.mark(warm, promoted=iso(self.now))
        self.abort("UserRollback", f"rolled back to {warm} (ramp.dev/rollback)")
        s = self.bg_status()
        s.warm_revision = s.warm_until = None
        s.switched_at = iso(self.now)
        return self.bg_aborted()

    def bg_aborted(self) -> Plan:
        """Active back on blue at once (it never left full size while warm); green stays
        ``abortScaleDownDelaySeconds`` and then goes."""
        st, bg, s = self.st, self.bg(), self.bg_status()
        blue, green = st.stable_revision or "", st.canary_revision or ""
        s.active_revision = blue
        s.promoted = s.skip_analysis = s.verified_at = s.switched_at = None
        since = parse_iso(s.aborted_at)
        if since is None:
            s.aborted_at = iso_ceil(self.now)
            since = parse_iso(s.aborted_at) or self.now
        until = since + timedelta(seconds=bg.abort_scale_down_delay)
        g = self.child(green)
        keep = g.replicas if g is not None and self.now < until else 0
        if keep:
            self.wake_in((until - self.now).total_seconds())
        st.weights = Weights(desired=0, actual=0)
        self.conditions["Aborted"] = (True, st.abort_reason or "Aborted", st.abort_message or "")
        self.conditions["Progressing"] = (False, "RolloutAborted", st.abort_message or "")
        st.message = (
            f"aborted: {st.abort_message}; active {blue} "
            f"{self.serving(blue)}/{self.total} ready"
            f"{f', green {green} removed at {iso(until)}' if keep else ''}"
            "; retry with ramp.dev/retry or change the template"
        )
        replicas = {blue: self.total, green: keep}
        # An older green the active Service still lists (replaced after the switch and
        # aborted in the same plan): it goes only once no endpoint of it is listed.
        listed = self.listed(bg.active_service)
        for other in self.live_children:
            if other.revision not in replicas and listed.get(other.revision):
                replicas[other.revision] = other.replicas
                self.wake_in(1.0)
        return self.finish(replicas)

    def bg_intent(self) -> TrafficIntent:
        """The active Service never selects an aborted or unverified revision, nor one with
        no ready pod while another has them; the preview never goes empty."""
        st, bg, s = self.st, self.bg(), self.bg_status()
        active = s.active_revision or st.stable_revision
        if self.serving(active) == 0:
            other = st.stable_revision if active != st.stable_revision else s.warm_revision
            if other and self.serving(other) > 0 and other != st.aborted_revision:
                active = other
        if self.serving(active) == 0:
            # Nothing ready to move to yet (a rolled-back blue still coming up): the active
            # Service stays where it is while that revision serves and was not aborted.
            current = (self.obs.services.get(bg.active_service) or {}).get(REVISION_LABEL)
            if current and current != st.aborted_revision and self.serving(current) > 0:
                active = current
        green = st.canary_revision if st.aborted_revision != st.canary_revision else None
        preview = green if green and self.serving(green) > 0 else active
        if preview == green:
            s.preview_revision = green
        elif s.preview_revision not in (None, active) and self.serving(s.preview_revision) > 0:
            preview = s.preview_revision if s.preview_revision != st.aborted_revision else active
        s.preview_revision = preview
        # A Service Ramp has not pinned yet (it may serve pods of what ran before Ramp) is
        # narrowed only once the revision is fully available.
        return TrafficIntent(
            targets=(
                ServiceTarget(bg.active_service, active, self.total),
                ServiceTarget(bg.preview_service, preview, self.total),
            ),
            weights=self.traffic_weights(),
        )

    def bg_counts(self) -> None:
        """The HPA sees only the active side: its pods and a selector narrowed to it."""
        st, s = self.st, self.bg_status()
        active = s.active_revision or st.stable_revision
        child = self.child(active)
        st.replicas = child.current if child else 0
        st.ready_replicas = min(child.ready, child.current) if child else 0
        if active:
            st.selector = f"{st.selector},{REVISION_LABEL}={active}" if st.selector else ""
