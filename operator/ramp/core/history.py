"""Revisions and their history: who is stable, who is the canary, what was aborted.

Identities come from the status and the revision history (one ControllerRevision per
revision, owned by the Rollout, holding the template exactly as written and the marks
``promoted-at`` and ``aborted``) — never from Deployment labels alone. So a lost status
resumes safely (stable = the last promoted revision; an unproven canary restarts at
step 1; an aborted one stays aborted) and a deleted stable Deployment is recreated from
its template instead of letting the canary take over.
"""

from __future__ import annotations

from ramp.core.draft import Draft
from ramp.core.model import TOKEN_VERBS, Plan, iso
from ramp.core.status import finish, last_promoted


def recover_identities(d: Draft) -> None:
    """Fill in the stable (and aborted) revision when the status does not know them."""
    st = d.st
    if st.stable_revision is None:
        last = last_promoted(d)
        if last is not None:
            st.stable_revision = last.revision
            d.event(
                "StatusRecovered",
                f"no status: stable revision {last.revision} recovered from the revision history",
                warning=True,
            )
        else:
            # No promotion marked (a status written by a version before history, or a
            # history deleted by someone): the child Ramp labelled stable is the stable,
            # never the template nobody has run yet. (The previous promotion's entry is
            # kept until the next one is marked: see status.prune.)
            labelled = next((c for c in d.live_children if c.role == "stable"), None)
            if labelled is not None:
                st.stable_revision = labelled.revision
                if d.history:
                    d.event(
                        "StatusRecovered",
                        f"no status: stable revision {labelled.revision} recovered from "
                        "its Deployment (no promotion marked in the history yet)",
                        warning=True,
                    )
            else:
                st.stable_revision = d.revision
                d.event(
                    "Initialized",
                    f"revision {d.revision} is stable (first revision: no steps)",
                )
            d.mark(st.stable_revision, promoted=iso(d.now))
    entry = d.entry(d.revision)
    if (
        entry is not None
        and entry.aborted
        and d.revision != st.stable_revision
        and st.aborted_revision != d.revision
        and st.canary_revision is None
        and "retry" not in d.tokens
    ):
        # The history remembers an abort the status lost: do not retry by ourselves.
        # (Only when the status does not know the canary: a retry clears the mark a
        # moment after the status, and a lagging history must not undo the retry.)
        st.canary_revision = d.revision
        st.current_step_index = 0
        st.aborted_revision = d.revision
        st.abort_reason = entry.aborted
        st.abort_message = f"aborted earlier ({entry.aborted}); recorded in the history"
    stable = st.stable_revision
    last = last_promoted(d)
    if stable and (last is None or last.revision != stable):
        # A promotion is marked in the history only once a status saying so was
        # accepted (this pass reads it): the history never says more than the status.
        d.mark(stable, promoted=iso(d.now), aborted=None)


def ensure_stable(d: Draft) -> Plan | None:
    """The stable Deployment exists, or is recreated from history, or we hold."""
    st = d.st
    stable = st.stable_revision or ""
    if stable in d.children:
        return None
    if stable in d.going:
        st.message = f"the Deployment of stable revision {stable} is being deleted; waiting"
        d.conditions["Progressing"] = (True, "StableRecreating", st.message)
        d.wake_in(1.0)
        d.defer_tokens(*TOKEN_VERBS)  # acted on once the stable is back
        return finish(d, {c.revision: c.replicas for c in d.live_children})
    entry = d.entry(stable)
    template = d.obs.template if stable == d.revision else (entry.template if entry else None)
    if template is None:
        st.message = (
            f"the Deployment of stable revision {stable} is missing and its template is "
            "not in the revision history: nothing is promoted or scaled; restore it or "
            "set spec.template to the stable template"
        )
        d.conditions["StableMissing"] = (True, "StableMissing", st.message)
        d.paused_reason = "StableMissing"
        d.defer_tokens(*TOKEN_VERBS)  # acted on once the stable is back
        return finish(d, None)
    d.creates[stable] = template
    if d.old.stable_revision is None:
        return None  # the first revision: created, not recreated
    d.event(
        "StableRecreated",
        f"the Deployment of stable revision {stable} was missing: recreated from the "
        "revision history",
        warning=True,
    )
    return None


def ensure_canary_identity(d: Draft) -> None:
    st = d.st
    if st.canary_revision == d.revision:
        if d.entry(d.revision) is None:
            d.mark(d.revision)
        return
    previous = st.canary_revision
    st.canary_revision = d.revision
    d.mark(d.revision)
    if previous and previous != st.aborted_revision:
        restart_canary(
            d,
            "CanaryReplaced",
            f"new template mid-rollout: canary {previous} replaced by {d.revision}, "
            "restarting at step 1",
        )
    else:
        restart_canary(
            d,
            "RolloutStarted",
            f"rolling out revision {d.revision} (stable {st.stable_revision}), "
            f"{d.strategy.describe(d)}",
        )


def restart_canary(d: Draft, reason: str, message: str) -> None:
    st = d.st
    st.current_step_index = 0
    st.step_started_at = iso(d.now)
    st.progressed_at = None
    st.aborted_revision = None
    st.abort_reason = None
    st.abort_message = None
    st.measurements = None
    st.analysis_runs = None
    st.step_history = None
    if d.entry(d.revision) is not None or d.revision in d.history_writes:
        d.mark(d.revision, aborted=None)
    d.event(reason, message)
    d.strategy.restarted(d)


def clear_canary(d: Draft) -> None:
    """No canary any more (promoted or rolled back); its measurements stay as the record."""
    st = d.st
    st.canary_revision = None
    st.current_step_index = None
    st.step_started_at = None
    st.progressed_at = None
    st.analysis_runs = None
    st.held_by_spec_paused = None
