"""Revisions and their history: who is stable, who is the canary, what was aborted.

Identities come from the status and the revision history (one ControllerRevision per
revision, owned by the Rollout, holding the template exactly as written and the marks
``promoted-at`` and ``aborted``) — never from Deployment labels alone. So a lost status
resumes safely (stable = the last promoted revision; an unproven canary restarts at
step 1; an aborted one stays aborted) and a deleted stable Deployment is recreated from
its template instead of letting the canary take over.
"""

from __future__ import annotations

from ramp.core.context import PlanContext
from ramp.core.model import TOKEN_VERBS, HistoryEntry, Plan, iso


class HistoryMixin(PlanContext):
    def recover_identities(self) -> None:
        """Fill in the stable (and aborted) revision when the status does not know them."""
        st = self.st
        if st.stable_revision is None:
            last = self.last_promoted()
            if last is not None:
                st.stable_revision = last.revision
                self.event(
                    "StatusRecovered",
                    f"no status: stable revision {last.revision} recovered from the revision "
                    "history",
                    warning=True,
                )
            else:
                # No promotion marked: the status was lost before the mark that follows an
                # accepted promotion (or written by a version before history). Ramp labels a
                # child stable only after a status saying so was accepted: that child is the
                # stable, never the template nobody has run yet.
                labelled = next((c for c in self.live_children if c.role == "stable"), None)
                if labelled is not None:
                    st.stable_revision = labelled.revision
                    if self.history:
                        self.event(
                            "StatusRecovered",
                            f"no status: stable revision {labelled.revision} recovered from "
                            "its Deployment (no promotion marked in the history yet)",
                            warning=True,
                        )
                else:
                    st.stable_revision = self.revision
                    self.event(
                        "Initialized",
                        f"revision {self.revision} is stable (first revision: no steps)",
                    )
                self.mark(st.stable_revision, promoted=iso(self.now))
        entry = self.entry(self.revision)
        if (
            entry is not None
            and entry.aborted
            and self.revision != st.stable_revision
            and st.aborted_revision != self.revision
            and st.canary_revision is None
            and "retry" not in self.tokens
        ):
            # The history remembers an abort the status lost: do not retry by ourselves.
            # (Only when the status does not know the canary: a retry clears the mark a
            # moment after the status, and a lagging history must not undo the retry.)
            st.canary_revision = self.revision
            st.current_step_index = 0
            st.aborted_revision = self.revision
            st.abort_reason = entry.aborted
            st.abort_message = f"aborted earlier ({entry.aborted}); recorded in the history"
        stable = st.stable_revision
        last = self.last_promoted()
        if stable and (last is None or last.revision != stable):
            # A promotion is marked in the history only once a status saying so was
            # accepted (this pass reads it): the history never says more than the status.
            self.mark(stable, promoted=iso(self.now), aborted=None)

    def last_promoted(self) -> HistoryEntry | None:
        """The revision a lost status would recover as stable: the newest promotion; of
        two marked in the same second, not one aborted since (a promotion clears the abort
        mark, so that abort came after it)."""
        promoted = [h for h in self.history.values() if h.promoted_at]
        if not promoted:
            return None
        return max(promoted, key=lambda h: (h.promoted_at or "", not h.aborted, h.number))

    def ensure_stable(self) -> Plan | None:
        """The stable Deployment exists, or is recreated from history, or we hold."""
        st = self.st
        stable = st.stable_revision or ""
        if stable in self.children:
            return None
        if stable in self.going:
            st.message = f"the Deployment of stable revision {stable} is being deleted; waiting"
            self.conditions["Progressing"] = (True, "StableRecreating", st.message)
            self.wake_in(1.0)
            self.defer_tokens(*TOKEN_VERBS)  # acted on once the stable is back
            return self.finish({c.revision: c.replicas for c in self.live_children})
        entry = self.entry(stable)
        template = (
            self.obs.template if stable == self.revision else (entry.template if entry else None)
        )
        if template is None:
            st.message = (
                f"the Deployment of stable revision {stable} is missing and its template is "
                "not in the revision history: nothing is promoted or scaled; restore it or "
                "set spec.template to the stable template"
            )
            self.conditions["StableMissing"] = (True, "StableMissing", st.message)
            self.paused_reason = "StableMissing"
            self.defer_tokens(*TOKEN_VERBS)  # acted on once the stable is back
            return self.finish(None)
        self.creates[stable] = template
        if self.old.stable_revision is None:
            return None  # the first revision: created, not recreated
        self.event(
            "StableRecreated",
            f"the Deployment of stable revision {stable} was missing: recreated from the "
            "revision history",
            warning=True,
        )
        return None

    def ensure_canary_identity(self) -> None:
        st = self.st
        if st.canary_revision == self.revision:
            if self.entry(self.revision) is None:
                self.mark(self.revision)
            return
        previous = st.canary_revision
        st.canary_revision = self.revision
        self.mark(self.revision)
        if previous and previous != st.aborted_revision:
            self.restart_canary(
                "CanaryReplaced",
                f"new template mid-rollout: canary {previous} replaced by {self.revision}, "
                "restarting at step 1",
            )
        else:
            self.restart_canary(
                "RolloutStarted",
                f"rolling out revision {self.revision} (stable {st.stable_revision}), "
                f"{len(self.steps())} steps",
            )

    def restart_canary(self, reason: str, message: str) -> None:
        st = self.st
        st.current_step_index = 0
        st.step_started_at = iso(self.now)
        st.progressed_at = None
        st.aborted_revision = None
        st.abort_reason = None
        st.abort_message = None
        st.measurements = None
        st.analysis_runs = None
        st.step_history = None
        if st.blue_green is not None:
            release = st.blue_green
            release.promoted = release.skip_analysis = release.verified_at = None
            release.switched_at = release.aborted_at = release.waiting_for = None
        if self.entry(self.revision) is not None or self.revision in self.history_writes:
            self.mark(self.revision, aborted=None)
        self.event(reason, message)
        self.warn_weight(0)

    def clear_canary(self) -> None:
        """No canary any more (promoted or rolled back); its measurements stay as the record."""
        st = self.st
        st.canary_revision = None
        st.current_step_index = None
        st.step_started_at = None
        st.progressed_at = None
        st.analysis_runs = None
        st.held_by_spec_paused = None

    def prune(self, replicas: dict[str, int]) -> tuple[list[str], list[str]]:
        """Children and history entries beyond ``revisionHistoryLimit``: (names, revisions)."""
        live = {self.st.stable_revision, self.st.canary_revision, self.revision}
        idle = [
            c
            for c in self.live_children
            if c.revision not in live and replicas.get(c.revision, 0) == 0 and c.current == 0
        ]
        idle.sort(key=lambda c: c.created, reverse=True)
        limit = self.spec.history_limit
        delete = [c.name for c in idle[limit:]]
        kept = {c.revision for c in idle[:limit]}
        old = sorted(
            (h for h in self.history.values() if h.revision not in live | kept),
            key=lambda h: h.number,
            reverse=True,
        )
        room = max(limit - len(kept), 0)
        return delete, [h.revision for h in old[room:]]
