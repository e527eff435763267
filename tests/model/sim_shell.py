"""The simulated cluster behind the shell's write ports: every plan of the model tests is
applied by the REAL executor (:class:`ramp.shell.controller.apply.Executor`, the code the
operator runs), through :class:`SimWrites` and :class:`SimWorkloads` instead of
:class:`ramp.shell.adapters.kube.Kube` and its ``Workloads``.

They answer as the API server does: a refused write raises the API's error (the
executor decides what it means), a status patch of a stale body conflicts, a patch of a
ControllerRevision that is gone answers 404 (:class:`Conflict` from the real adapter), a
create of an existing name 409 (taken as "exists").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException

from model.crd_schema import json_copy
from model.sim_workload import collect
from ramp.core.model import Child, Event, HistoryWrite, Role, iso
from ramp.core.names import (
    MAX_CHILD_NAME,
    child_name,
    label_value_problem,
    name_problem,
    rollout_label,
)
from ramp.core.workload_model import GIVE_BACK_FINALIZER, WorkloadPatch
from ramp.shell.adapters.kube import Conflict

if TYPE_CHECKING:
    from model.sim import Cluster


def _refused(c: Cluster, create: bool = False) -> bool:
    """One write; the API server may refuse it (``Cluster.refuse``): its error is raised.
    False: a create answered 409 (taken as "exists")."""
    from model.sim import Refused

    try:
        return c.write(create=create)
    except Refused as refused:
        raise ApiException(status=refused.code, reason=f"simulated {refused.code}") from None


class SimWrites:
    """:class:`ramp.shell.controller.apply.Writes` over the simulated cluster."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def create_child(
        self,
        rollout: Mapping[str, Any],
        revision: str,
        template: Mapping[str, Any],
        replicas: int,
        role: Role,
    ) -> None:
        from model.sim import UID, Dep, Violation

        c = self.c
        name = child_name(c.cfg.name, revision)
        for what, problem in (
            (name, name_problem(name, MAX_CHILD_NAME)),
            (rollout_label(c.cfg.name), label_value_problem(rollout_label(c.cfg.name))),
        ):
            if problem:
                raise Violation(f"(n) the shell would write an invalid {what!r}: {problem}")
        if not _refused(c, create=True) or name in c.deps:
            return  # 409: it exists (or is being deleted); the watch will show it
        c.created_seq += 1
        c.unseen.add(name)
        c.created_now.add(revision)
        c.deps[name] = Dep(
            name=name,
            revision=revision,
            role=role,
            owner=UID,
            template=copy.deepcopy(dict(template)),
            replicas=replicas,
            created=iso(c.now),  # a creationTimestamp: one second's resolution
            kind="ReplicaSet" if c.cfg.replica_sets else "Deployment",
        )

    def scale_child(
        self, namespace: str, child: Child, replicas: int | None, role: Role | None
    ) -> None:
        from model.sim import UID

        c = self.c
        grow = replicas is not None and replicas != child.replicas
        relabel = role is not None and role != child.role
        if not grow and not relabel:
            return
        _refused(c)
        dep = c.deps.get(child.name)
        if dep is None:
            raise ApiException(status=404, reason="NotFound")
        if dep.owner != UID:
            c.foreign_writes.append(dep.name)
        if grow and replicas != dep.replicas:
            assert replicas is not None
            dep.replicas = replicas
            dep.generation += 1
        if grow and replicas is not None:
            c.scaled_since_view[dep.name] = replicas  # the shell's expectation of it
        if relabel:
            dep.role = role

    def delete_child(self, namespace: str, name: str, kind: str = "Deployment") -> None:
        from model.sim import UID

        c = self.c
        _refused(c)
        dep = c.deps.get(name)
        if dep is not None and dep.owner != UID:
            c.foreign_writes.append(name)
        c.deps.pop(name, None)

    def write_traffic(self, namespace: str, write: object) -> float | None:
        gateway = getattr(self.c, "gateway", None)  # model.sim_gateway
        if gateway is None:
            raise NotImplementedError("the simulated cluster has no traffic router beyond Services")
        try:
            _refused(self.c)
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise
            return 0.5  # the real writer reads the route again soon
        again: float | None = gateway.patch(write)
        return again

    def pin_service(self, namespace: str, service: str, selector: Mapping[str, str | None]) -> bool:
        c = self.c
        _refused(c)
        current = c.services.get(service)
        if current is None:
            return False  # 404: no such Service
        current.update({k: v for k, v in selector.items() if v is not None})
        for key in [k for k, v in selector.items() if v is None]:
            current.pop(key, None)  # a merge patch's null removes the key
        return True

    def write_history(
        self,
        rollout: Mapping[str, Any],
        write: HistoryWrite,
        template: Mapping[str, Any] | None,
        number: int,
        exists: bool,
    ) -> None:
        from model.sim import CR

        c = self.c
        if not exists and template is None:
            return  # the shell logs a warning and writes nothing
        _refused(c)
        existing = c.history.get(write.revision)
        if existing is None and exists:
            # 404: the index showed a revision deleted meanwhile; the adapter raises
            # Conflict and the shell plans again from a fresh view.
            raise Conflict(f"ControllerRevision {write.revision} is gone")
        if existing is None:
            assert template is not None
            c.history[write.revision] = CR(
                write.revision,
                number,
                copy.deepcopy(dict(template)),
                {k: v for k, v in write.annotations.items() if v is not None},
            )
            return
        for k, v in write.annotations.items():  # its marks (a 409 on create: the same)
            if v is None:
                existing.annotations.pop(k, None)
            else:
                existing.annotations[k] = v

    def delete_history(self, namespace: str, rollout: str, revision: str) -> None:
        _refused(self.c)
        self.c.history.pop(revision, None)

    def get_recorded_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The template Ramp wrote, as the Deployment's annotation records it: not its pod
        template, which someone may have edited since (make fuzz-for, seed 973134997)."""
        dep = self.c.deps.get(name)
        if dep is None:
            return None
        return copy.deepcopy(dict(self.c.originals.get(name, dep.template)))

    def patch_status(
        self, rollout: Mapping[str, Any], status: dict[str, Any]
    ) -> dict[str, Any] | None:
        c = self.c
        if (rollout.get("status") or {}) == status:
            return None
        _refused(c)
        if rollout["metadata"]["resourceVersion"] != str(c.rv):
            raise Conflict(rollout["metadata"]["name"])  # 409: plan again from a fresh read
        c.status = json_copy(status)
        c.bump()
        return c.full_body()

    def emit(self, rollout: Mapping[str, Any], event: Event) -> None:
        self.c.events.append((self.c.now, event.reason, event.message))


class SimWorkloads:
    """:class:`ramp.shell.controller.apply.WorkloadWrites` over the simulated cluster:
    the give-back finalizer on the Rollout and the plain Deployment's merge patch."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def add_finalizer(self, body: dict[str, Any]) -> None:
        c = self.c
        finalizers: list[str] = c.body["metadata"].setdefault("finalizers", [])
        if GIVE_BACK_FINALIZER not in finalizers:
            finalizers.append(GIVE_BACK_FINALIZER)
            c.bump()

    def patch_deployment(self, namespace: str, patch: WorkloadPatch) -> None:
        c = self.c
        if c.plain is None or patch.name != c.plain.name:
            return  # 404
        p, h = c.plain, c.held
        if patch.replicas is not None and patch.replicas != p.replicas:
            p.replicas = patch.replicas
            p.generation += 1
        if patch.paused is not None and patch.paused != h.paused:
            h.paused = patch.paused
            if h.paused and h.rolled is None:
                h.rolled = copy.deepcopy(dict(p.template))
            p.generation += 1
        for target, changes in ((h.annotations, patch.annotations), (h.labels, patch.labels)):
            for k, v in changes.items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = v

    def remove_finalizer(self, body: dict[str, Any], index: int) -> None:
        c = self.c
        meta = c.body["metadata"]
        finalizers: list[str] = meta.setdefault("finalizers", [])
        if GIVE_BACK_FINALIZER not in finalizers:
            return  # 422: the JSON patch's test failed (the list changed)
        finalizers.remove(GIVE_BACK_FINALIZER)
        c.bump()
        if meta.get("deletionTimestamp"):
            collect(c)  # the last finalizer gone: garbage collection takes the Rollout


__all__ = ["SimWorkloads", "SimWrites"]
