"""Tracked configuration in the simulated cluster (issue 25).

A tracked Rollout (``Config.track_config``) reads the ConfigMap ``settings`` (envFrom);
the machines change its *data* where they would change the image (``set_template`` of
image k writes data version k; an invalid template deletes the ConfigMap), so a release,
a rollback to the stable's data, a change mid-canary and a missing object come from the
same draws. The shell's rewrite is played with the real pure core
(:func:`ramp.core.config_tracking.track`), as :meth:`ramp.config_copies.ConfigTracker.
rewrite` does, and the oracle's (cfg) holds after every plan: no Deployment and no history
entry of a tracked Rollout ever reads the ConfigMap itself, only a copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ramp.api.labels import revision_hash
from ramp.core.config_tracking import ConfigRef, data_digest, references, track
from ramp.core.model import Plan

if TYPE_CHECKING:
    from model.sim import Cluster

SOURCE = ConfigRef("ConfigMap", "settings")


def reading_config(tpl: dict[str, Any]) -> dict[str, Any]:
    """``tpl`` (as the user writes it) with ``envFrom: settings``."""
    out = copy.deepcopy(tpl)
    out["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": SOURCE.name}}]
    return out


def digest(data: int | None) -> str | None:
    """The digest of data version ``data`` (None: the ConfigMap does not exist)."""
    return None if data is None else data_digest({"data": {"version": str(data)}})


def rewrite(template: Mapping[str, Any], data: int | None) -> tuple[dict[str, Any], str | None]:
    """What the shell plans with: the template rewritten to the copy, or (the ConfigMap
    missing) the template as written and the problem naming it."""
    tracked = track(template, {SOURCE: digest(data)})
    return tracked.template, (f"spec.template: {tracked.problem}" if tracked.problem else None)


def revision(tpl: dict[str, Any], data: int | None) -> str:
    """The revision a tracked template is planned as with data version ``data``."""
    return revision_hash(rewrite(tpl, data)[0])


def observed(c: Cluster, template: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of :class:`Observed` the shell sets for a tracked Rollout."""
    planned, problem = rewrite(template, c.config_data)
    return {"template": planned, "spec_problem": problem}


def check_reads_copies(result: Plan) -> None:
    """(cfg) Nothing Ramp creates or records reads the ConfigMap itself: a pod of any
    revision reads the immutable copy made for that revision."""
    from model.sim import Violation

    templates = [*result.creates.values(), *(w.template for w in result.history if w.template)]
    for tpl in templates:
        for ref in references(tpl):
            if ref.ref == SOURCE:
                raise Violation(f"(cfg) a template Ramp writes reads {SOURCE} itself ({ref.path})")


__all__ = ["SOURCE", "check_reads_copies", "digest", "observed", "reading_config", "revision"]
