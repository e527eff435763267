"""Issue 19, classes 5 and 6 on the real cluster: names at the API's limits, durations
beyond any sense, and a reconcile that fails (not only a log line).

A sampler reads, every 0.25 s, the ready pods of the app and the ready endpoints of the
Service under test (told apart by the pods' ``ramp.dev/revision`` label, never by name)
so the tests check what traffic would have seen."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from ramp_e2e import Rollouts, Sampling, condition, rollout_manifest

from cluster.waiting import wait_for
from ramp.core.names import label_value_problem, name_problem, rollout_label

REV = "ramp.dev/revision"


class Serving(Sampling[tuple[int, int]]):
    """Every 0.25 s: ready pods of the app and ready endpoints of ``service`` (if any);
    ``samples`` are (ready pods, ready endpoints)."""

    def __init__(self, rollouts: Rollouts, app: str, service: str | None = None) -> None:
        super().__init__()
        self.rollouts, self.app, self.service = rollouts, app, service
        self.discovery = client.DiscoveryV1Api(self.rollouts.custom.api_client)

    def sample(self) -> tuple[int, int]:
        pods = sum(self.rollouts.ready_pods(self.app).values())
        if self.service is None:
            return pods, pods
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.rollouts.ns, label_selector=f"kubernetes.io/service-name={self.service}"
        ).items
        ready = sum(
            1
            for s in slices
            for e in s.endpoints or []
            if e.conditions is None or e.conditions.ready is not False
        )
        return pods, ready

    def never_dark(self) -> None:
        """The app always had ready pods, and the Service always listed some of them."""
        assert self.samples, "no sample taken"
        dark = [s for s in self.samples if s[0] == 0 or s[1] == 0]
        assert not dark, f"{len(dark)} of {len(self.samples)} samples without service: {dark[:5]}"


def long_name(size: int, stem: str) -> str:
    return (stem + "-" + "x" * size)[: size - 1] + "z"


def manifest_for(name: str, app: str, **kw: Any) -> dict[str, Any]:
    """A Rollout named ``name`` whose pods are labelled ``app=<app>`` (a label value is
    at most 63 characters: a long name cannot be one)."""
    manifest = rollout_manifest(name, **kw)
    manifest["spec"]["selector"] = {"matchLabels": {"app": app}}
    manifest["spec"]["template"]["metadata"]["labels"] = {"app": app}
    return manifest


def check_children(rollouts: Rollouts, name: str) -> None:
    """Every child is labelled with the Rollout's label value and has a valid name."""
    assert label_value_problem(rollout_label(name)) is None
    deps = rollouts.deployments(name)
    assert deps, "no child Deployment labelled for the Rollout"
    for dep in deps.values():
        assert name_problem(dep.metadata.name) is None
        assert any(o.name == name for o in dep.metadata.owner_references or [])


def test_a_rollout_named_with_253_characters_progresses(rollouts: Rollouts) -> None:
    """f61a406: every reconcile failed with a 422 (the label ramp.dev/rollout=<name>):
    no status, no verbs."""
    name = long_name(253, "canary-at-the-limit")
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(manifest_for(name, "limit", replicas=2, steps=steps))
    first = rollouts.wait_healthy(name, 2, timeout=90)
    with Serving(rollouts, "limit") as serving:
        rollouts.set_image(name, "ramp-test/app:v2")
        rollouts.wait_phase(name, "Paused", timeout=90)
        rollouts.request(name, "promote")
        rollouts.wait(
            name,
            "the new revision stable",
            lambda s: (
                s.get("phase") == "Healthy"
                and s.get("stableRevision") != first["stableRevision"]
                and s.get("readyReplicas") == 2
            ),
            timeout=90,
        )
    check_children(rollouts, name)
    serving.never_dark()


@pytest.mark.parametrize("size", [50])
def test_a_blue_green_rollout_with_a_long_name_switches(rollouts: Rollouts, size: int) -> None:
    """f61a406: from 47 characters on, the green pods' names (cut by the API server to
    58 characters before the random suffix) did not start with ``<child>-``: the switch
    waited for "0/2 green endpoints" forever."""
    name = long_name(size, "blue-green")
    core = client.CoreV1Api(rollouts.custom.api_client)
    for svc in ("lbg-active", "lbg-preview"):
        core.create_namespaced_service(
            rollouts.ns,
            {
                "metadata": {"name": svc},
                "spec": {"selector": {"app": "lbg"}, "ports": [{"port": 80}]},
            },
        )
    manifest = manifest_for(name, "lbg", replicas=2)
    manifest["spec"]["strategy"] = {
        "blueGreen": {
            "activeService": "lbg-active",
            "previewService": "lbg-preview",
            "scaleDownDelaySeconds": 2,
        }
    }
    rollouts.create(manifest)
    blue = rollouts.wait_healthy(name, 2, timeout=90)["stableRevision"]
    with Serving(rollouts, "lbg", "lbg-active") as serving:
        rollouts.set_image(name, "ramp-test/app:v2")
        status = rollouts.wait(
            name,
            "switched to green and Healthy",
            lambda s: (
                s.get("phase") == "Healthy"
                and s.get("stableRevision") not in (None, blue)
                and (s.get("blueGreen") or {}).get("activeRevision") == s.get("stableRevision")
            ),
            timeout=90,
        )
    # The pass writes its status (the intent) before the Service's pin: under load the pin
    # comes a moment after the status a poll reads (a fresh-clone CI run read it between).
    wait_for(
        "the active Service pinned to green",
        lambda: (
            core.read_namespaced_service("lbg-active", rollouts.ns).spec.selector.get(REV)
            == status["stableRevision"]
        ),
        timeout=10,
        interval=0.1,
    )
    check_children(rollouts, name)
    serving.never_dark()


def test_a_huge_pause_is_refused_and_the_release_still_aborts(rollouts: Rollouts) -> None:
    """f61a406: ``pause: {duration: 99999999999h}`` was accepted and every reconcile raised
    OverflowError (no status, abort impossible). The API server refuses it now, naming the
    field; the paused release keeps serving and an abort still works."""
    name = "huge-pause"
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(rollout_manifest(name, replicas=2, steps=steps))
    rollouts.wait_healthy(name, 2, timeout=90)
    with Serving(rollouts, name) as serving:
        rollouts.set_image(name, "ramp-test/app:v2")
        rollouts.wait_phase(name, "Paused", timeout=90)
        huge = [{"setWeight": 50}, {"pause": {"duration": "99999999999h"}}]
        with pytest.raises(ApiException) as refused:
            rollouts.patch(name, {"spec": {"strategy": {"canary": {"steps": huge}}}})
        assert refused.value.status == 422
        assert "steps[1].pause.duration" in str(refused.value.body)
        assert "8760h" in str(refused.value.body)
        metric = {
            "name": "m",
            "initialDelay": "99999999999h",
            "prometheus": {"address": "http://p:9090", "query": "up"},
            "successCondition": "result < 1.0",
        }
        with pytest.raises(ApiException) as refused:
            analysis = [{"analysis": {"metrics": [metric]}}]
            rollouts.patch(name, {"spec": {"strategy": {"canary": {"steps": analysis}}}})
        assert refused.value.status == 422 and "initialDelay" in str(refused.value.body)
        rollouts.request(name, "abort")
        rollouts.wait(
            name,
            "aborted back to stable",
            lambda s: s.get("phase") == "Aborted" and s.get("readyReplicas") == 2,
            timeout=90,
        )
    serving.never_dark()


def test_a_failing_reconcile_shows_a_condition_and_an_event(rollouts: Rollouts) -> None:
    """f61a406: an exception out of a reconcile was a log line every 2 s, forever. Here a
    ResourceQuota forbids ControllerRevisions (as a policy engine might): the Rollout shows
    a ReconcileError condition and a Warning Event, retried with backoff; once the quota is
    gone it proceeds and the condition goes."""
    name = "quota"
    core = client.CoreV1Api(rollouts.custom.api_client)
    hard = {"count/controllerrevisions.apps": "0"}
    quota = {"metadata": {"name": "no-history"}, "spec": {"hard": hard}}
    core.create_namespaced_resource_quota(rollouts.ns, quota)
    rollouts.create(rollout_manifest(name, replicas=2))
    status = rollouts.wait(
        name,
        "a ReconcileError condition",
        lambda s: condition(s, "ReconcileError").get("status") == "True",
        timeout=60,
    )
    assert "controllerrevisions" in condition(status, "ReconcileError")["message"]
    events = rollouts.wait_events(name, "ReconcileError", 1, timeout=30)
    assert events[0][0] == "Warning" and "retried with backoff" in events[0][2]
    core.delete_namespaced_resource_quota("no-history", rollouts.ns)
    status = rollouts.wait_healthy(name, 2, timeout=120)
    assert not condition(status, "ReconcileError")
    # One Event per distinct error, not one per retry.
    assert len([e for e in rollouts.events(name) if e[1] == "ReconcileError"]) <= 3
