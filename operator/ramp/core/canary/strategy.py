"""The canary strategy as the planner sees it (:class:`Canary`). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from ramp.api.analysis import AnalysisRef
from ramp.api.durations import parse_duration
from ramp.api.rollout import RolloutSpec, RolloutStatus
from ramp.core.abort import drain_others
from ramp.core.canary.steps import canary_spec, walk_steps, warn_weight
from ramp.core.draft import Draft
from ramp.core.gating import BACKGROUND, step_run
from ramp.core.history import clear_canary
from ramp.core.model import Child, Plan
from ramp.core.route_hold import held_pin
from ramp.core.routers import exact_routers
from ramp.core.split import Limits, Side, next_replicas, split_replicas
from ramp.core.status import finish
from ramp.core.traffic import ServiceTarget, TrafficIntent


class Canary:
    """``spec.strategy.canary``: replica-ratio steps (see :mod:`ramp.core.canary`)."""

    name = "canary"
    rollback = False

    def problems(self, spec: RolloutSpec) -> str | None:
        canary = canary_spec(spec)
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

    def limits(self, spec: RolloutSpec) -> Limits:
        canary = canary_spec(spec)
        try:
            return Limits.resolve(spec.replicas, canary.surge, canary.unavailable)
        except ValueError:  # reported as an invalid spec; moves stay within one pod
            return Limits(total=spec.replicas, surge=1, unavailable=0)

    def runs_in_play(self, spec: RolloutSpec, status: RolloutStatus) -> dict[str, AnalysisRef]:
        """The current step's analysis and the background analysis."""
        canary = spec.strategy.canary
        if canary is None:
            return {}
        index = status.current_step_index or 0
        runs: dict[str, AnalysisRef] = {}
        if index < len(canary.steps) and canary.steps[index].analysis is not None:
            ref = canary.steps[index].analysis
            assert ref is not None
            runs[step_run(index)] = ref
        background = canary.analysis
        if background is not None and index >= (background.starting_step or 0):
            runs[BACKGROUND] = background
        return runs

    def services(self, spec: RolloutSpec) -> tuple[str, ...]:
        canary = canary_spec(spec)
        return tuple(n for n in (canary.stable_service, canary.canary_service) if n)

    def steady(self, d: Draft) -> Plan:
        """The template is the stable one: steady state, or a rollback."""
        st = d.st
        if st.canary_revision:
            d.event(
                "RolledBack",
                f"template equals stable revision {st.stable_revision}: canary "
                f"{st.canary_revision} removed without steps",
            )
        clear_canary(d)
        st.aborted_revision = None
        st.abort_reason = None
        st.abort_message = None
        drain = drain_others(d, stable_target=d.total)
        if drain is not None:
            return drain
        stable = d.child(st.stable_revision)
        if stable is None or not stable.converged or stable.replicas != d.total:
            ready = stable.ready if stable else 0
            st.message = f"stable revision {st.stable_revision}: {ready}/{d.total} ready"
            d.conditions["Progressing"] = (True, "ScalingStable", st.message)
        else:
            st.message = f"stable revision {st.stable_revision} runs {d.total}/{d.total} ready"
            d.conditions["Progressing"] = (False, "RolloutCompleted", "")
        return finish(d, {st.stable_revision or "": d.total})

    def share(self, d: Draft) -> int:
        """A canary's pods count toward the stable's share."""
        canary = d.child(d.st.canary_revision)
        return canary.replicas if canary else 0

    def progress(self, d: Draft) -> Plan:
        d.token_not_applicable("rollback", "rollback flips back a blue-green release")
        if d.spec.paused:
            return walk_steps(d, hold="SpecPaused")
        if d.st.held_by_spec_paused:
            d.st.held_by_spec_paused = None
            d.event("Resumed", "spec.paused is false: the rollout resumes")
        return walk_steps(d)

    def hold(self, d: Draft, reason: str) -> Plan:
        """The split still follows ``replicas`` and the gates still judge; no step is
        passed."""
        drain = drain_others(d, stable_target=d.total - self.share(d))
        return drain if drain is not None else walk_steps(d, hold=reason)

    def aborted(self, d: Draft) -> Plan:
        """The stable comes back first (beyond ``maxSurge`` if need be: the known-good
        version first, bounded by ``R``); the canary goes to zero as stable capacity
        allows, or at once with ``abortScaleDown: Immediate``."""
        st = d.st
        immediate = canary_spec(d.spec).abort_scale_down == "Immediate"
        canary, stable = d.side(st.canary_revision), d.side(st.stable_revision)
        # Other revisions still running (a replaced canary) shrink with the canary, as the
        # stable's pods become ready: their ready pods may be all that serves.
        keep = {st.stable_revision, st.canary_revision}
        canary_rev = st.canary_revision if st.canary_revision in d.children else None
        others = sorted(
            (o for o in d.live_children if o.revision not in keep and o.replicas > 0),
            key=d.age,
            reverse=True,
        )
        going = Side(
            canary.desired + sum(o.replicas for o in others),
            canary.counted_ready + sum(o.serving for o in others),
        )
        if immediate:
            left, s = 0, d.total
        else:
            left, s = next_replicas(
                d.limits, split_replicas(d.total, 0), going, stable, stable_first=True
            )
        # What is left keeps ready pods first (the canary's too), then others' pods.
        going_children = [*others, *([d.children[canary_rev]] if canary_rev else [])]
        kept = {g.revision: 0 for g in going_children}
        for g in going_children:
            kept[g.revision] = min(g.serving, left)
            left -= kept[g.revision]
        for g in others:
            more = min(g.replicas - kept[g.revision], left)
            kept[g.revision] += more
            left -= more
        c = kept.pop(canary_rev, 0) + left if canary_rev else 0
        ready = d.serving(st.stable_revision)
        st.message = (
            f"aborted: {st.abort_message}; stable {st.stable_revision} {ready}/{d.total} ready"
            f"{'' if c == 0 and canary.desired == 0 else f', canary scaling to 0 ({c} left)'}"
            "; retry with ramp.dev/retry or change the template"
        )
        d.conditions["Aborted"] = (True, st.abort_reason or "Aborted", st.abort_message or "")
        d.conditions["Progressing"] = (False, "RolloutAborted", st.abort_message or "")
        replicas = {st.stable_revision or "": s}
        if st.canary_revision:
            replicas[st.canary_revision] = c
        replicas.update(kept)
        return finish(d, replicas)

    def at_rest(self, d: Draft, replicas: dict[str, int]) -> dict[str, int]:
        return replicas

    def draining(self, d: Draft, others: list[Child], replicas: dict[str, int]) -> None:
        return None

    def restarted(self, d: Draft) -> None:
        warn_weight(d, 0)

    def intent(self, d: Draft, replicas: Mapping[str, int] | None) -> TrafficIntent:
        # The workload left as it is (invalid spec, stable missing): pods still come and
        # go, and a pinned Service still follows the ready ones.
        as_is = {c.revision: c.replicas for c in d.live_children}
        return pinned(d, as_is if replicas is None else replicas)

    def counts(self, d: Draft) -> None:
        return None

    def describe(self, d: Draft) -> str:
        return f"{len(canary_spec(d.spec).steps)} steps"


def pinned(d: Draft, replicas: Mapping[str, int]) -> TrafficIntent:
    """Pinned Services never select a revision with no ready pod while another has
    (counting the pods that stay once ``replicas`` is applied: at weight 100 before
    promotion the stable Service follows the canary as the stable goes to zero). A
    Service not pinned yet is narrowed once the revision runs all the ready pods it is
    planned to run (at least one)."""
    st = d.st
    strategy = canary_spec(d.spec)
    canary = st.canary_revision if st.aborted_revision != st.canary_revision else None
    stable = st.stable_revision

    # Any other revision with ready pods comes last (e.g. a drained canary while the
    # stable it was rolled back to has none ready yet): never an empty Service.
    others = sorted(d.children, key=lambda r: -min(d.children[r].serving, replicas.get(r, 0)))

    def choose(primary: str | None, fallback: str | None) -> str | None:
        children = [c for c in map(d.child, (primary, fallback, *others)) if c is not None]
        for child in children:
            # Its ready pods that stay: not those of a scale-down under way (a child the
            # watch shows older than our scale to 0: make fuzz-for, seed 16224389).
            if min(child.serving, replicas.get(child.revision, 0)) > 0:
                return child.revision
        for child in children:
            # None sure: the ready pods of a scale-down its controller has not carried
            # out, which this plan undoes (make fuzz-for, seed 499187107: a stale read
            # scaled the stable back up, the canary Service stayed on the drained canary).
            if min(child.ready, replicas.get(child.revision, 0)) > 0:
                return child.revision
        return primary or fallback

    def target(service: str | None, revision: str | None) -> ServiceTarget:
        narrow_at = max(1, min(d.total, replicas.get(revision or "", 0)))
        return ServiceTarget(service, revision, narrow_at)

    canary_pin = choose(canary or stable, stable)
    if exact_routers(d.spec):
        canary_pin = held_pin(d, strategy.canary_service, canary_pin)
    return TrafficIntent(
        targets=(
            target(strategy.stable_service, choose(stable, canary)),
            target(strategy.canary_service, canary_pin),
        ),
        weights=d.traffic_weights(),
    )
