"""Walking the canary's steps: weights, readiness, pauses, analysis gates, promotion.

A ``setWeight`` step is reached when the canary and the stable both hold their share,
ready. While the rollout waits for replicas a progress deadline runs like a Deployment's:
it counts from the last progress (a ready or existing pod more or less on either side,
a step entered), so a scale or a pod going unready restarts the clock instead of
aborting a rollout that is not stuck.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ramp.api.analysis import AnalysisRef
from ramp.api.durations import parse_duration
from ramp.api.rollout import MAX_STEP_HISTORY, HandledTokens, Step, StepRecord, Weights
from ramp.core.context import PlanContext
from ramp.core.gating import BACKGROUND, evaluate, step_run
from ramp.core.model import PROGRESS_GRAIN, Plan, iso, parse_iso
from ramp.core.split import Split, next_replicas, split_replicas


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


class StepsMixin(PlanContext):
    def promote_tokens(self, index: int) -> int:
        steps = self.steps()
        if self.tokens.get("promote-full"):
            self.event("PromotedFull", "promote-full requested: skipping the remaining steps")
            self.tokens.pop("promote", None)
            return self.enter(len(steps))
        if self.tokens.get("promote"):
            if index >= len(steps):
                self.token_not_applicable("promote", "every step is done already")
                return index
            self.event(
                "Promoted",
                f"promote requested: step {index + 1}/{len(steps)} "
                f"({describe_step(steps[index])}) skipped",
            )
            return self.enter(index + 1)
        return index

    def enter(self, index: int) -> int:
        """Enter step ``index``: its clock starts; analysis runs of other steps end."""
        st = self.st
        st.current_step_index = index
        st.step_started_at = iso(self.now)
        st.progressed_at = None
        keep = {BACKGROUND, step_run(index)}
        runs = [r for r in st.analysis_runs or [] if r.name in keep]
        st.analysis_runs = runs or None
        self.warn_weight(index)
        return index

    def walk_steps(self, hold: str | None = None) -> Plan:
        """Walk from the current step as far as the cluster allows. ``hold`` (the reason:
        spec.paused, an invalid spec) keeps the step and the promote tokens, but the split
        still follows ``replicas``, the background analysis still judges and the progress
        deadline still runs."""
        st = self.st
        steps = self.steps()
        index = st.current_step_index or 0
        if hold is None:
            index = self.promote_tokens(index)
        elif hold == "SpecPaused" and self.st.handled_tokens is not None:
            # Promotions wait for the resume: they are not consumed while held.
            before = self.old.handled_tokens or HandledTokens()
            self.st.handled_tokens.promote = before.promote
            self.st.handled_tokens.promote_full = before.promote_full
        else:
            self.defer_tokens("promote", "promote-full")  # acted on once the hold ends
        canary_rev, stable_rev = st.canary_revision or "", st.stable_revision or ""
        for _ in range(len(steps) + 2):
            st.current_step_index = index
            weight = step_weight(steps, index)
            target = split_replicas(self.total, weight)
            self.full_weight = weight >= 100
            canary, stable = self.child(canary_rev), self.child(stable_rev)
            c, s = next_replicas(self.limits, target, self.side(canary_rev), self.side(stable_rev))
            replicas = {canary_rev: c, stable_rev: s}
            reached = (
                (c, s) == (target.canary, target.stable)
                and (target.canary == 0 or (canary is not None and canary.converged))
                and (canary is None or canary.replicas == target.canary)
                and (stable is None or (stable.converged and stable.replicas == target.stable))
                and (stable is not None or target.stable == 0)
            )
            self.set_weights(weight)
            background = self.background_gate(index, replicas)
            if background is not None:
                return background
            if not reached:
                return self.wait_ready(index, target, replicas)
            st.progressed_at = None
            if hold is not None:
                return self.held(hold, index, replicas)
            if weight > 0 and self.total == 0:
                return self.no_replicas(index, replicas)
            if canary is not None and canary.drift:
                return self.drifted(canary.name, replicas)
            if index >= len(steps):
                return self.promote()
            step = steps[index]
            started = parse_iso(st.step_started_at) or self.now
            if step.pause is not None:
                if step.pause.duration is None:
                    self.paused_reason = "PauseStep"
                    st.message = (
                        f"paused at step {index + 1}/{len(steps)} until promoted "
                        "(kubectl ramp promote, or annotate ramp.dev/promote=<token>)"
                    )
                    return self.finish(replicas)
                left = (started + parse_duration(step.pause.duration)) - self.now
                if left > timedelta(0):
                    self.wake_in(left.total_seconds())
                    st.message = (
                        f"step {index + 1}/{len(steps)}: pause {step.pause.duration}, "
                        f"{left.total_seconds():.1f}s left"
                    )
                    return self.finish(replicas)
            elif step.analysis is not None:
                held = self.gate_outcome(
                    step_run(index), step.analysis, f"step {index + 1} analysis", replicas
                )
                if held is not None:
                    return held
            self.event(
                "StepCompleted",
                f"step {index + 1}/{len(steps)} ({describe_step(step)}) complete: "
                f"canary {target.canary}, stable {target.stable} ready",
                post=False,  # one write per step saved: the record is stepHistory
            )
            self.st.step_history = [
                *(self.st.step_history or [])[-(MAX_STEP_HISTORY - 1) :],
                StepRecord(index=index, completed_at=iso(self.now)),
            ]
            index = self.enter(index + 1)
        raise AssertionError("unreachable: the step loop is bounded by the number of steps")

    def held(self, why: str, index: int, replicas: dict[str, int]) -> Plan:
        st = self.st
        if why == "SpecPaused":
            if not st.held_by_spec_paused:
                self.event("Paused", "spec.paused is true: the rollout holds where it is")
            st.held_by_spec_paused = True
            st.message = (
                f"paused by spec.paused at step {index + 1}/{len(self.steps())}; set "
                "spec.paused to false to resume (background analysis keeps judging)"
            )
        self.paused_reason = why
        return self.finish(replicas)

    def no_replicas(self, index: int, replicas: dict[str, int]) -> Plan:
        """``spec.replicas`` is 0 (an off-hours scaler, KEDA): a step that should show the
        canary to users has nothing to show, and a revision that never ran a ready pod is
        never promoted. The rollout holds here (no progress deadline: nothing is stuck)
        and goes on once there are replicas again."""
        st = self.st
        steps = self.steps()
        where = f"step {index + 1}/{len(steps)}" if index < len(steps) else "promotion"
        st.message = (
            f"{where} holds: spec.replicas is 0, so revision {st.canary_revision} runs no "
            "pod to judge; the rollout goes on once replicas are back"
        )
        self.paused_reason = "NoReplicas"
        return self.finish(replicas)

    def drifted(self, name: str, replicas: dict[str, int]) -> Plan:
        """The canary's pod template was edited by someone: its pods are not the revision,
        so they prove nothing; no step is passed until the template is restored."""
        self.st.message = (
            f"holds: the pod template of the canary Deployment {name} was edited; its pods "
            "are not the revision and prove nothing (see condition TemplateDrift)"
        )
        self.paused_reason = "TemplateDrift"
        return self.finish(replicas)

    def set_weights(self, desired: int) -> None:
        c_ready = self.serving(self.st.canary_revision)
        s_ready = self.serving(self.st.stable_revision)
        actual = round(100 * c_ready / (c_ready + s_ready)) if c_ready + s_ready else 0
        self.st.weights = Weights(desired=desired, actual=actual)

    def wait_ready(self, index: int, target: Split, replicas: dict[str, int]) -> Plan:
        st = self.st
        steps = self.steps()
        canary, stable = self.child(st.canary_revision), self.child(st.stable_revision)
        c_ready = canary.ready if canary else 0
        s_ready = stable.ready if stable else 0
        deadline = self.progress_deadline()
        where = (
            f"step {index + 1}/{len(steps)} ({describe_step(steps[index])})"
            if index < len(steps)
            else "promotion (weight 100)"
        )
        if self.now >= deadline:
            self.abort(
                "ProgressDeadlineExceeded",
                f"{where}: no progress within progressDeadlineSeconds="
                f"{self.spec.deadline_seconds}: canary {c_ready}/{target.canary} ready, "
                f"stable {s_ready}/{target.stable} ready",
            )
            return self.aborted()
        self.wake_in((deadline - self.now).total_seconds())
        st.message = (
            f"{where}: waiting for canary {c_ready}/{target.canary} ready and stable "
            f"{s_ready}/{target.stable}"
        )
        canary_rev = st.canary_revision
        if canary_rev == self.revision and canary_rev not in self.children:
            self.creates[canary_rev] = self.obs.template
        return self.finish(replicas)

    def progress_deadline(self) -> datetime:
        """When the progress deadline ends: ``progressDeadlineSeconds`` after the last
        progress (a ready or existing pod more or less on either side since the last
        written status, or the start of the wait)."""
        st = self.st
        canary, stable = self.child(st.canary_revision), self.child(st.stable_revision)
        moved = (
            (canary.ready if canary else 0) != (self.old.canary_ready_replicas or 0)
            or (stable.ready if stable else 0) != (self.old.stable_ready_replicas or 0)
            or (canary.current if canary else 0) != (self.old.canary_replicas or 0)
            or (stable.current if stable else 0) != (self.old.stable_replicas or 0)
        )
        since = parse_iso(st.progressed_at)
        deadline = timedelta(seconds=self.spec.deadline_seconds)
        # Progress is recorded at most once per PROGRESS_GRAIN of the deadline: a pod
        # more or less within it is not worth a status write of its own. Such a move may
        # then be written with other counts and never recorded, so it happened before
        # ``since + grain`` at the latest: the deadline counts from there. It is never
        # early, and at most one grain late.
        grain = deadline * PROGRESS_GRAIN
        if since is None or (moved and self.now - since >= grain):
            since = self.now
            st.progressed_at = iso(self.now)
        elif moved:
            self.wake_in((since + grain - self.now).total_seconds())
        return since + grain + deadline

    def background_gate(self, index: int, replicas: dict[str, int]) -> Plan | None:
        background = self.spec.canary.analysis
        if background is None or index < (background.starting_step or 0):
            return None
        return self.gate_outcome(BACKGROUND, background, "background analysis", replicas)

    def gate_outcome(
        self, run: str, ref: AnalysisRef, what: str, replicas: dict[str, int]
    ) -> Plan | None:
        st = self.st
        if run not in self.obs.analysis:
            self.measure.append(run)
        result = evaluate(run, self.obs.analysis.get(run), st, self.now)
        if result.outcome == "Passed":
            return None
        if result.outcome == "Running":
            if result.next_check_in is not None:
                self.wake_in(result.next_check_in)
            if run == BACKGROUND:
                return None
            st.message = f"{what}: {result.message}"
            return self.finish(replicas)
        if result.outcome == "Failed" or result.abort:
            self.abort("AnalysisFailed", f"{what}: {result.message}")
            return self.aborted()
        self.paused_reason = f"Analysis{result.outcome}"
        st.message = (
            f"paused: {what} is {result.outcome.lower()}: {result.message}; nothing is "
            "promoted; fix the cause and retry (ramp.dev/retry) or promote"
        )
        return self.finish(replicas)

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
        # No history mark yet: the next pass writes ``promoted-at`` once this status is
        # accepted (a mark written before a status that then conflicts -- an abort racing
        # the promotion -- would make a lost status recover the aborted revision).
        st.stable_revision = new_stable
        self.clear_canary()
        st.message = f"stable revision {new_stable} runs {self.total}/{self.total} ready"
        self.conditions["Progressing"] = (False, "RolloutCompleted", "")
        self.set_weights(0)
        return self.finish({new_stable: self.total, old_stable: 0})
