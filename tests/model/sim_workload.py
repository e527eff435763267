"""``spec.workloadRef`` and the Rollout's deletion in the simulated cluster (issue 19).

With ``Config.workload_ref`` the Rollout adopts the plain Deployment of :mod:`model.sim`
(``web-plain``, whose pods the Services selected before Ramp): its template is the
Rollout's, the shell's writes to it (the give-back finalizer first, then the Deployment's
merge patch, the finalizer removed last) go to :class:`model.sim_shell.SimWorkloads`, and
a deleted Rollout is held by that finalizer until the plan lets it go; then garbage
collection takes its children. Simplification: the Deployment's pods carry the same
labels whatever its template (only the image changes), and unpaused it rolls at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from model.sim_config import observed as config_observed
from ramp.core.model import iso
from ramp.core.workload_model import (
    GIVE_BACK_FINALIZER,
    MANAGED_ANNOTATION,
    ORIGINAL_ANNOTATION,
    SCALED_TO_ANNOTATION,
    WATCHED_VALUE,
    Workload,
)

if TYPE_CHECKING:
    from model.sim import Cluster

ROLLOUT_LABEL = "ramp.dev/rollout"


@dataclass
class Held:
    """What the API server holds of the plain Deployment besides replicas and pods."""

    paused: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    rolled: Any = None
    """The template its pods run (None: the one it has)."""


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def held_name(c: Cluster) -> str | None:
    """The Deployment the Rollout references or still holds (``Workloads.held``); with the
    give-back finalizer and none named, the one annotated as held by it (``marked``)."""
    ref = c.spec.get("workloadRef") or {}
    name = ref.get("name") or ((c.status or {}).get("workload") or {}).get("name")
    if name or GIVE_BACK_FINALIZER not in (c.body["metadata"].get("finalizers") or []):
        return name  # type: ignore[no-any-return]
    p, h = c.plain, c.held
    marked = h.labels.get(ROLLOUT_LABEL) == WATCHED_VALUE
    mine = h.annotations.get(MANAGED_ANNOTATION) == c.body["metadata"]["name"]
    return p.name if p is not None and marked and mine else None


def workload_of(c: Cluster) -> Workload | None:
    """The plain Deployment as the shell summarises it (None: no workloadRef held)."""
    name = held_name(c)
    if not name:
        return None
    p = c.plain
    if p is None or name != p.name:
        return Workload(name=name, found=False)
    h = c.held
    return Workload(
        name=p.name,
        template=copy.deepcopy(dict(p.template)),
        selector={"matchLabels": {"app": "web"}},
        replicas=p.replicas,
        ready=p.ready,
        current=p.current,
        updated=p.current if h.rolled is None or h.rolled == p.template else 0,
        paused=h.paused,
        generation=p.generation,
        observed_generation=p.observed_generation,
        managed_by=h.annotations.get(MANAGED_ANNOTATION),
        scaled_to=_int(h.annotations.get(SCALED_TO_ANNOTATION)),
        original=_int(h.annotations.get(ORIGINAL_ANNOTATION)),
        watched=h.labels.get(ROLLOUT_LABEL) == WATCHED_VALUE,
    )


def observed_extras(c: Cluster, body: dict[str, Any]) -> dict[str, Any]:
    """The fields of :class:`Observed` the shell fills for a workloadRef and a deletion."""
    workload = workload_of(c)
    meta = body["metadata"]
    template = body["spec"].get("template") or (workload.template if workload else None) or {}
    extras = {
        "template": template,
        "workload": workload,
        "deleting": bool(meta.get("deletionTimestamp")),
        "deleted_at": meta.get("deletionTimestamp"),
    }
    if body["spec"].get("trackConfig") and not extras["deleting"]:
        extras.update(config_observed(c, template))  # the shell's ConfigTracker.rewrite
    gateway = getattr(c, "gateway", None)  # model.sim_gateway: the routes the shell reads
    if gateway is not None:
        extras["traffic"] = gateway.observe()
    return extras


def delete_rollout(c: Cluster) -> None:
    """``kubectl delete rollout``: held by a finalizer, or gone at once."""
    meta = c.body["metadata"]
    if meta.get("deletionTimestamp") or c.gone:
        return
    meta["deletionTimestamp"] = iso(c.now)
    c.bump()
    c.held_at_deletion = bool(meta.get("finalizers"))
    if not c.held_at_deletion:
        collect(c)


def collect(c: Cluster) -> None:
    """The Rollout is gone: garbage collection deletes its children and history."""
    c.gone = True
    for dep in c.owned():
        dep.deleting = True
    c.history.clear()


def unref(c: Cluster) -> None:
    """``workloadRef`` removed (the template written instead): the Deployment is given
    back while the Rollout goes on with the same revision."""
    if "workloadRef" not in c.spec or c.plain is None:
        return
    del c.spec["workloadRef"]
    c.spec["template"] = copy.deepcopy(dict(c.plain.template))
    c.bump(spec=True)


def settle_rolled(c: Cluster) -> None:
    """Unpaused, the plain Deployment runs its template (it rolls at once here)."""
    if not c.held.paused:
        c.held.rolled = None
