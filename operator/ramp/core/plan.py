"""The planner: from everything observed and measured, every action to take. Pure.

``plan(observed, now)`` reads the Rollout (spec, status, request tokens), its owned
children, the revision history, the pinned Services and the analysis runs (already
measured by the shell), and returns a :class:`Plan`: scales in order, creates, deletes,
history writes, Service pins, the status, Events, the runs to measure and when to look
again. It is level-based: given the same inputs it returns the same plan, and applying a
plan and planning again changes nothing more.

:meth:`_Planner.run` is the whole sequence; each concern lives in its own module:
:mod:`~ramp.core.history` (revisions, identities, history), :mod:`~ramp.core.checks`
(spec checks), :mod:`~ramp.core.abort` (abort, retry, drain),
:mod:`~ramp.core.steps` (steps, gates, promotion), :mod:`~ramp.core.status` (status,
conditions, Services, phase).
"""

from __future__ import annotations

from datetime import datetime

from ramp.core.abort import AbortMixin
from ramp.core.bluegreen import BlueGreenMixin
from ramp.core.checks import selector_string, spec_problems
from ramp.core.history import HistoryMixin
from ramp.core.model import (
    TOKEN_VERBS,
    Child,
    Event,
    GateResult,
    HistoryEntry,
    HistoryWrite,
    Observed,
    Plan,
    Role,
    ServicePin,
)
from ramp.core.release_clock import track_release
from ramp.core.status import StatusMixin, phase
from ramp.core.steps import StepsMixin, describe_step, step_weight
from ramp.core.workload import WorkloadMixin


class _Planner(HistoryMixin, AbortMixin, BlueGreenMixin, StepsMixin, StatusMixin, WorkloadMixin):
    """One planning pass."""

    def run(self) -> Plan:
        st = self.st
        if self.obs.deleting:
            return Plan(status=self.old, write_status=False)  # garbage collection's now
        st.observed_generation = self.obs.generation
        st.selector = selector_string(self.spec)
        problem = self.obs.spec_problem or self.obs.refused or self.workload_problem()
        problem = problem or spec_problems(self.spec, self.obs.template)
        if problem and not self.obs.template:
            return self.invalid(problem)  # no template (workloadRef unresolved): no identity
        self.recover_identities()
        if problem:
            return self.invalid(problem)
        self.ignore_tokens_without_rollout()
        missing = self.ensure_stable()
        if missing is not None:
            return missing
        if self.revision == st.stable_revision:
            return self.bg_steady() if self.spec.blue_green else self.steady()
        self.ensure_canary_identity()
        self.abort_and_retry_tokens()
        if st.aborted_revision == self.revision:
            return self.aborted()
        # Blue-green: blue stays at full size beside green (it is what the active Service
        # lists); a canary's pods count toward the stable's share.
        share = 0 if self.spec.blue_green else self.canary_share()
        drain = self.drain_others(stable_target=self.total - share)
        if drain is not None:
            return drain
        if self.spec.blue_green:
            return self.blue_green()
        self.token_not_applicable("rollback", "rollback flips back a blue-green release")
        if self.spec.paused:
            return self.walk_steps(hold="SpecPaused")
        if st.held_by_spec_paused:
            st.held_by_spec_paused = None
            self.event("Resumed", "spec.paused is false: the rollout resumes")
        return self.walk_steps()

    def canary_share(self) -> int:
        canary = self.child(self.st.canary_revision)
        return canary.replicas if canary else 0

    def invalid(self, problem: str) -> Plan:
        """An invalid spec leaves the workload as it is — but an abort is honoured and a
        live canary stays judged (background analysis, progress deadline)."""
        st = self.st
        old = next((c for c in self.old.conditions or [] if c.type == "InvalidSpec"), None)
        if old is None or old.status != "True" or old.message != problem:
            self.event("InvalidSpec", f"{problem}; the workload is left as it is", warning=True)
        self.conditions["InvalidSpec"] = (True, "InvalidSpec", problem)
        message = f"invalid spec: {problem}; the workload keeps running as it was"
        live = st.canary_revision and st.canary_revision != st.stable_revision
        for verb in ("promote", "promote-full", "retry"):
            if self.obs.refused:
                self.defer_tokens(verb)  # a refusal consumes no verb: acted on later
            else:
                self.token_not_applicable(verb, "the spec is invalid")
        recreated = self.recreate_stable_from_history()
        if not live:
            if self.obs.refused:
                self.defer_tokens("abort")
            self.token_not_applicable("abort", "no rollout is in progress")
            st.message = message
            if not recreated:
                return self.finish(None)
            replicas = {st.stable_revision or "": self.total}
            if self.spec.blue_green:
                # Nothing else scales down meanwhile: the warm revision may be all the
                # active Service lists (issue 10: blue stays while its endpoints are).
                replicas = {**{c.revision: c.replicas for c in self.live_children}, **replicas}
            return self.finish(replicas)
        if self.tokens.get("abort") and st.aborted_revision != st.canary_revision:
            self.abort("UserAbort", "aborted by request (ramp.dev/abort)")
            self.tokens.pop("abort")
        self.token_not_applicable("abort", "the rollout is already aborted")
        if st.aborted_revision == st.canary_revision:
            plan = self.aborted()
        elif self.spec.blue_green:
            # A blue-green release holds as it is: nothing switches, nothing scales down.
            self.paused_reason = "InvalidSpec"
            plan = self.finish({c.revision: c.replicas for c in self.live_children})
        else:
            drain = self.drain_others(stable_target=self.total - self.canary_share())
            plan = drain if drain is not None else self.walk_steps(hold="InvalidSpec")
        st.message = f"{message}; {st.message}"
        self.fill_conditions()
        return plan

    def recreate_stable_from_history(self) -> bool:
        """Even with an invalid spec, a missing stable comes back from its history entry
        (never from the invalid template): an abort must have a stable to return to."""
        stable = self.st.stable_revision
        entry = self.entry(stable)
        if (
            not stable
            or stable in self.children
            or stable in self.going
            or stable == self.revision
            or entry is None
            or entry.template is None
        ):
            return False
        self.creates[stable] = entry.template
        self.event(
            "StableRecreated",
            f"the Deployment of stable revision {stable} was missing: recreated from the "
            "revision history",
            warning=True,
        )
        return True

    def ignore_tokens_without_rollout(self) -> None:
        if self.revision == self.st.stable_revision:
            for verb in ("promote", "promote-full", "abort", "retry"):
                self.token_not_applicable(verb, "no rollout is in progress")
            if not self.spec.blue_green:
                self.token_not_applicable("rollback", "rollback flips back a blue-green release")

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
        drain = self.drain_others(stable_target=self.total)
        if drain is not None:
            return drain
        stable = self.child(st.stable_revision)
        if stable is None or not stable.converged or stable.replicas != self.total:
            ready = stable.ready if stable else 0
            st.message = f"stable revision {st.stable_revision}: {ready}/{self.total} ready"
            self.conditions["Progressing"] = (True, "ScalingStable", st.message)
        else:
            st.message = (
                f"stable revision {st.stable_revision} runs {self.total}/{self.total} ready"
            )
            self.conditions["Progressing"] = (False, "RolloutCompleted", "")
        return self.finish({st.stable_revision or "": self.total})


def plan(observed: Observed, now: datetime) -> Plan:
    """Decide the next move of a Rollout. Pure: the clock is the ``now`` parameter."""
    planner = _Planner(observed, now)
    result = planner.with_workload(planner.run())  # the adopted Deployment, if any
    if result.write_status:
        strategy = "blueGreen" if planner.spec.blue_green else "canary"
        result.released = track_release(result.status, now, strategy)
    result.status.clip_strings()  # whatever a branch wrote last stays inside the schema
    return result


__all__ = [
    "TOKEN_VERBS",
    "Child",
    "Event",
    "GateResult",
    "HistoryEntry",
    "HistoryWrite",
    "Observed",
    "Plan",
    "Role",
    "ServicePin",
    "describe_step",
    "phase",
    "plan",
    "step_weight",
]
