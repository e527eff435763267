"""Blue-green in the simulated cluster of :mod:`model.sim`: the release's invariants.

The cluster is the same (lying index, cut reconciles, chaos); ``Config.blue_green``
makes the Rollout a blue-green one, the simulated EndpointSlices of the active and
preview Services list the ready pods their selectors matched one tick ago
(:meth:`model.sim.Cluster.slices`), and Service pins are applied as the shell does.

:class:`BlueGreenOracle` checks, after every reconcile:

* (d) every status is valid against the CRD, (g) no progress-deadline abort with
  progress, (e) a token has its effect once, (a) a stable revision was promoted
  (inherited from :class:`model.sim.Oracle`);
* (h) the active Service never selects a revision with no ready pod while another
  eligible revision (verified, not aborted) has ready pods;
* (i) the active Service never selects an aborted or unverified revision — unverified:
  green before the switch was decided (pre-promotion analysis not passed, or not
  promoted: no auto-promotion due and no promote token), or a switch not gated on the
  preview Service's EndpointSlices listing green at full size;
* (j) a revision is never scaled to zero (nor deleted) by the planner while the active
  Service's EndpointSlices still list endpoints of it (an aborted revision excepted:
  ``abortScaleDownDelaySeconds: 0`` removes it at once by request).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from model.sim import UID, USER_KEY, Cluster, Config, Dep, Oracle, View, Violation, released
from ramp.api.labels import REVISION_LABEL
from ramp.api.rollout import RolloutStatus
from ramp.core.gating import PRE
from ramp.core.model import Observed, Plan
from ramp.core.verdicts import parse_time

GRANTS = ("Promoted", "PromotedFull", "AutoPromoted")
"""The Events of a plan that grants promotion to green."""
ACTIVE = "web-active"
PREVIEW = "web-preview"


def bg_cluster(cfg: Config) -> Cluster:
    """A cluster whose Rollout is blue-green (``cfg.blue_green`` set), checked by
    :class:`BlueGreenOracle`."""
    assert cfg.blue_green is not None
    c = Cluster(cfg)
    c.oracle = BlueGreenOracle(c)
    return c


def bg_config(**fields: Any) -> dict[str, Any]:
    return {"activeService": ACTIVE, "previewService": PREVIEW, **fields}


class BlueGreenOracle(Oracle):
    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self.verified: set[str] = set()
        """Greens whose switch was decided properly (the active Service may select them)."""

    @property
    def bg(self) -> dict[str, Any]:
        bg: dict[str, Any] = self.c.body["spec"]["strategy"]["blueGreen"]
        return bg

    def before_apply(self, observed: Observed, view: View, result: Plan) -> None:
        seen, progress_at = self.seen_counts, self.progress_at
        try:
            super().before_apply(observed, view, result)
        except Violation as violation:
            # (g) judges what is carried out: a plan made from a stale body cannot write its
            # status (Conflict; the shell plans again from a fresh read). Blue-green clears
            # progressedAt once green is ready, so a stale status can still count the
            # deadline from an earlier moment (a known residue: the abort's history mark,
            # written before the status, stays on the ControllerRevision).
            stale = view.body["metadata"]["resourceVersion"] != str(self.c.rv)
            if not str(violation).startswith("(g)") or not (stale or self.no_gain(seen)):
                raise
        if self.no_gain(seen):
            self.progress_at = progress_at
        new = self.seen_counts or ()
        if self.high[4:] != new[4:]:
            self.high = new
        else:
            self.high = (*(max(a, b) for a, b in zip(self.high[:4], new[:4], strict=True)),)
            self.high += new[4:]

    high: tuple[int, ...] = ()
    """The most pods seen (ready, current; green, blue) since the release's identity."""

    def no_gain(self, seen: tuple[int, ...] | None) -> bool:
        """Fewer pods, or back to counts seen before (a green deleted and recreated): no
        progress, although the counts changed."""
        new = self.seen_counts
        if seen is None or new is None or new == seen or new[4:] != self.high[4:]:
            return False
        return all(n <= h for n, h in zip(new[:4], self.high[:4], strict=True))

    def after_apply(self, observed: Observed, view: View, result: Plan, done: set[str]) -> None:
        c = self.c
        self.checked += 1
        if c.foreign_writes:
            self.fail(f"a foreign Deployment was touched: {c.foreign_writes}")
        old = observed.rollout.status or RolloutStatus()
        new = result.status
        events = [e.reason for e in result.events]
        full = "events" in done
        applied_status = "status" in done and c.status == new.to_k8s()
        if "Initialized" in events and not self.ever_promoted and not self.history_had_promoted:
            self.promoted.add(new.stable_revision or "")  # the very first revision
        if applied_status and new.stable_revision:
            self.ever_promoted = True
        if not applied_status:
            self.unaccepted(result, done)
        if full or applied_status:
            self.tokens(observed, result, full)
        # What a plan decided holds once its status is written, even if a restart cut its
        # Events (the shell writes them last).
        recorded = full or applied_status
        if recorded:
            for e in result.events:
                # A retry of a paused analysis measures again: the release (and its
                # switch) stands; only a retry that restarts the release unverifies green.
                restarts = e.reason != "Retried" or "restarts" in e.message
                if e.reason in ("Retried", "RolloutStarted", "CanaryReplaced") and restarts:
                    self.verified.discard(new.canary_revision or "")
        self.promotion_grants(observed, result)
        if "Switched" in events:  # decided by this plan (whether or not applied in full)
            self.switch(observed, result)
        if recorded:
            for e in result.events:
                if e.reason == "Aborted":
                    self.aborted.add(new.aborted_revision or old.canary_revision or "")
                if e.reason in ("RolloutStarted", "CanaryReplaced"):
                    # A new release of a revision aborted before runs again; the aborted
                    # green it replaces stays aborted (its scale-down is by request). The
                    # release may complete in the same plan (a promote verb, green ready).
                    self.aborted.discard(released(result))
                if e.reason == "Retried":
                    # A retry may complete in the same plan (spec.replicas 0: nothing to
                    # wait for), which clears the canary from the status.
                    self.aborted.discard(new.canary_revision or old.canary_revision or "")
        if "RolloutCompleted" in events and recorded:
            rev = new.stable_revision or ""
            if rev in self.aborted:
                self.fail(f"(a) aborted revision {rev} promoted")
            if rev not in self.verified:
                self.fail(f"(i) revision {rev} completed without a verified switch")
            self.promoted.add(rev)
        if applied_status and new.stable_revision not in self.promoted:
            self.fail(
                f"(a) revision {new.stable_revision} is stable but was never promoted "
                f"(promoted: {sorted(self.promoted)}; events {events})"
            )
        if "scales" in done:
            self.scale_downs(observed)
        if "services" in done:
            self.active_service(observed)
        self.round2(observed, view, result, done)

    # -- (i) the switch is decided, verified and gated on the data plane ---------------

    def switch(self, observed: Observed, result: Plan) -> None:
        old = observed.rollout.status or RolloutStatus()
        new = result.status
        switched = next(e for e in result.events if e.reason == "Switched")
        green = switched.message.rsplit(" ", 1)[-1]
        release = old.blue_green
        s = new.blue_green
        assert s is not None
        annotations = observed.annotations
        events = [e.reason for e in result.events]
        bg = observed.rollout.spec.strategy.blue_green
        assert bg is not None
        # promote-full: "switch now, skip analysis, say so in an Event" (issue 10, Verbs).
        # The operator's explicit verb verifies green; the release may also complete in
        # the same plan (no post-promotion analysis), which clears skip_analysis again.
        full_token = bool(release and release.skip_analysis) or any(
            e.reason == "PromotedFull" for e in result.events
        )
        if full_token and not annotations.get("ramp.dev/promote-full"):
            self.fail(f"(i) {green} switched skipping analysis without a promote-full token")
        if bg.pre_promotion_analysis is not None and not full_token:
            measured = observed.rollout.status or RolloutStatus()
            run = next(
                (r for r in measured.analysis_runs or [] if r.name == PRE and r.revision == green),
                None,
            )
            if run is None or not run.metrics or any(m.phase != "Passed" for m in run.metrics):
                self.fail(f"(i) {green} switched without a Passed pre-promotion analysis: {run}")
        # Promotion was granted for this green: in this plan (an Event, checked by
        # promotion_grants and by (e) for the tokens) or by an earlier plan whose status
        # carries it (a restart of the release clears it).
        granted = bool(release and release.promoted) or any(
            e.reason in GRANTS for e in result.events
        )
        if not granted:
            self.fail(f"(i) {green} switched without promotion (events {events})")
        if observed.rollout.spec.paused:
            self.fail(f"(i) switched to {green} while spec.paused is true")
        total = observed.rollout.spec.replicas
        child = next(
            (
                ch
                for ch in observed.children
                if ch.revision == green and ch.owner == UID and not ch.deleting
            ),
            None,
        )
        if child is None or not child.settled or min(child.ready, child.current) < total:
            self.fail(f"(i) switched to {green} before it ran {total} ready pods: {child}")
        if bg.preview_service and bg.preview_service in observed.endpoints:
            listed = observed.endpoints[bg.preview_service].get(green, 0)
            if listed < total:
                self.fail(
                    f"(i) switched to {green} with {listed}/{total} ready endpoints listed in "
                    f"the preview Service"
                )
        self.verified.add(green)

    def promotion_grants(self, observed: Observed, result: Plan) -> None:
        """(i) auto-promotion only when enabled and ``autoPromotionSeconds`` after green
        was ready and verified; promote / promote-full only with a fresh token ((e))."""
        if not any(e.reason == "AutoPromoted" for e in result.events):
            return
        bg = observed.rollout.spec.strategy.blue_green
        assert bg is not None
        s = result.status.blue_green
        if not bg.auto_promotion:
            self.fail("(i) auto-promoted with autoPromotionEnabled: false")
        verified = parse_time(s.verified_at) if s and s.verified_at else None
        due = timedelta(seconds=bg.auto_promotion_seconds or 0)
        if verified is None or self.c.now < verified + due:
            self.fail(f"(i) auto-promoted before {due} after {verified}")

    # -- (h), (i) what the active Service selects --------------------------------------

    def active_service(self, observed: Observed) -> None:
        c = self.c
        selector = c.services.get(self.bg["activeService"])
        if selector is None or REVISION_LABEL not in selector:
            self.taken_over.discard(self.bg["activeService"])
            return
        active = selector[REVISION_LABEL]
        held = (self.before_services.get(self.bg["activeService"]) or {}).get(REVISION_LABEL)
        # "the active Service never selects a revision with zero ready pods while another
        # revision has ready pods" (issue 10, acceptance 1): ready pods, not replicas asked
        # for. A Deployment scaled down by someone else keeps its ready pods until its
        # controller acts (the planner may not even have seen the scale yet); one the
        # planner scaled down in this reconcile counts as gone at once.
        serving = {d.revision: n for d in c.owned() if (n := self.ready_pods(d))}
        eligible = {r for r in serving if r in self.promoted | self.verified} - self.aborted
        # The alternatives the issue names: blue (the stable), the warm revision ("keep
        # the old one ready as a fallback") and green once switched to. A green not
        # switched to -- even one that was the stable once, or one replaced mid-release --
        # is unverified in its release ("Before the active Service flips: ... pre-promotion
        # analysis passed", issue 10): (i) forbids it, so it is no alternative.
        if c.status is not None:
            status = RolloutStatus.model_validate(c.status)
            release = status.blue_green
            fallbacks = {status.stable_revision, release.warm_revision if release else None}
            if release is not None and release.switched_at:
                fallbacks.add(status.canary_revision)
            eligible &= {r for r in fallbacks if r}
        # With spec.replicas 0 the user asked for no pods: the revisions still draining
        # may serve, but the active one rightly has none.
        wanted = int(c.spec.get("replicas", 1) or 0)
        # A Deployment someone deleted that this reconcile still saw (a lagging watch):
        # the planner cannot move away from what it does not know is gone; the next
        # reconcile that sees the deletion is judged (h).
        unseen_deletion = (
            any(
                ch.owner == UID
                and not ch.deleting
                and (ch.name not in c.deps or c.deps[ch.name].deleting)
                for ch in observed.children
            )
            or any(
                # Likewise one someone scaled down that it saw at its old size (make fuzz-for,
                # seed 758236576: blue scaled to 0, its pods gone, the watch still showed 5).
                ch.owner == UID and ch.name in self.before and self.before[ch.name][0] < ch.replicas
                for ch in observed.children
            )
            or any(
                # Or the revision it selects with ready pods its Deployment no longer reports
                # (make fuzz-for, seed 870520857: the stable's pod went unready, the watch had
                # not delivered it; the next reconcile flips to the warm revision).
                ch.owner == UID
                and ch.revision == active
                and ch.name in c.deps
                and ch.ready > c.deps[ch.name].ready
                for ch in observed.children
            )
        )
        # (i), with (h) above it: the active Service never moves to an aborted or
        # unverified revision. It may keep the revision it already selected (one it was
        # switched to) while no eligible revision has a ready pod: an abort, or a retry
        # that restarts the release, whose blue was deleted flips back once blue is
        # ready again, never to a blue with nothing to serve (issue 19).
        if active in self.aborted or active not in self.promoted | self.verified:
            state = "aborted" if active in self.aborted else "unverified"
            handing_over = active == held and self.handing_over()
            if active != held or (eligible and wanted > 0 and not handing_over):
                self.fail(
                    f"(i) the active Service selects the {state} revision {active} "
                    f"(promoted {sorted(self.promoted)}, verified {sorted(self.verified)}; "
                    f"it selected {held}; eligible with ready pods {sorted(eligible)})"
                )
        if USER_KEY in selector:
            # The user's own key, which no pod carries: the Service serves no pod whatever
            # revision it names, so (h) has nothing to judge (make fuzz-for, seed
            # 471258659: an abort named blue, not ready yet, instead of green).
            return
        # (h) it never moves from a revision with ready pods to one without (what a user
        # sees: every request refused), whatever the reason for the move.
        before = {name.removeprefix("web-"): ready for name, (_, ready) in self.before.items()}
        if (
            held
            and active != held
            and before.get(held, 0) > 0
            and active not in serving
            and wanted > 0
            and not unseen_deletion
        ):
            self.fail(
                f"(h) the active Service moved from {held} ({before[held]} ready) to {active} "
                "with no ready pod"
            )
        # An eligible revision whose ready pods this pass's index did not show yet (a
        # lagging watch): the pass had nothing ready to move to; the next one is judged
        # (make fuzz-for, seed 685721533: blue deleted and recreated, its pod ready unseen).
        unseen_ready = bool(eligible) and not any(c.seen_ready.get(r, 0) for r in eligible)
        if (
            active not in serving
            and eligible
            and wanted > 0
            and not unseen_deletion
            and not unseen_ready
        ):
            self.fail(
                f"(h) the active Service selects {active} with no ready pod while "
                f"{sorted(eligible)} serve"
            )
        # What a user sees (issue 19): the whole selector matched against the pods' labels.
        if wanted > 0 and not unseen_deletion and not unseen_ready:
            name = self.bg["activeService"]
            self.judge_service(name, selector, self.ready_pods, sum(serving[r] for r in eligible))

    def handing_over(self) -> bool:
        """Whether the active Service moves through a route (a gateway's machine): it
        keeps what it selects until then."""
        return False

    def ready_pods(self, dep: Dep) -> int:
        """``dep``'s ready pods as the data plane has them; capped at its replicas when the
        planner lowered them in this reconcile (it takes them away itself)."""
        asked, _ = self.before.get(dep.name, (dep.replicas, 0))
        return min(dep.ready, dep.replicas) if dep.replicas < asked else dep.ready

    def services(self, observed: Observed | None, result: Plan | None) -> None:
        """(f) for blue-green: the active Service (judged with the release's eligibility
        in :meth:`active_service`; this is for a Rollout being deleted or gone)."""
        name = self.bg["activeService"]

        def ready(d: Dep) -> int:
            return min(d.ready, d.replicas)

        owned = sum(ready(d) for d in self.c.owned())
        self.judge_service(name, self.c.services.get(name), ready, owned)

    # -- (j) nothing still listed by the active Service is scaled away -----------------

    def scale_downs(self, observed: Observed) -> None:
        c = self.c
        # The endpoints the slices list whose pods still exist: a pod gone (the sim's
        # Deployment controller replaces an edited child's pods at once) serves nothing,
        # although the slices a tick behind still list it (make fuzz-for, seed 324332672).
        listed = c.shell_endpoints().get(self.bg["activeService"], {})
        if observed.rollout.spec.replicas == 0:
            return  # scaled to zero by request (an HPA, kubectl scale)
        after = {d.name: d for d in c.deps.values() if d.owner == UID and not d.deleting}
        for name, (replicas, _) in self.before.items():
            dep = after.get(name)
            if replicas == 0 or (dep is not None and dep.replicas > 0):
                continue
            revision = name.removeprefix("web-")
            if revision in self.aborted:
                continue
            if listed.get(revision, 0) > 0:
                self.fail(
                    f"(j) {revision} scaled to zero while the active Service's EndpointSlices "
                    f"list {listed[revision]} endpoints of it ({listed})"
                )
