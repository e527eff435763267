"""Bad input is refused by the API server with the field named; what passes the schema but
is still wrong becomes an InvalidSpec condition while the workload keeps running."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from ramp_chart import scratch_namespace
from ramp_e2e import GROUP, PLURAL, VERSION, Rollouts, condition, rollout_manifest

from cluster.fixtures import ClusterHandle


def _bad(mutate: Any) -> dict[str, Any]:
    manifest = rollout_manifest("bad", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}])
    mutate(manifest)
    return manifest


def _step(manifest: dict[str, Any], step: dict[str, Any]) -> None:
    manifest["spec"]["strategy"]["canary"]["steps"] = [step]


def _canary(manifest: dict[str, Any], **fields: Any) -> None:
    manifest["spec"]["strategy"]["canary"].update(fields)


def _bg(manifest: dict[str, Any], keep_canary: bool = False, **fields: Any) -> None:
    strategy = manifest["spec"]["strategy"]
    if not keep_canary:
        strategy.pop("canary")
    strategy["blueGreen"] = {"activeService": "web", **fields}


def _check(metric: dict[str, Any]) -> Any:
    """A step judged by one check metric (issue 24)."""
    return lambda m: _step(m, {"analysis": {"metrics": [{"name": "check", **metric}]}})


SMOKE = {"containers": [{"name": "smoke", "image": "ramp-test/smoke:1"}]}

BAD_ROLLOUTS: list[tuple[str, Any, str]] = [
    (
        "a check Job without a deadline",
        _check({"job": {"template": {"spec": SMOKE}}}),
        "activeDeadlineSeconds",
    ),
    (
        "a check Job past the longest deadline",
        _check({"job": {"activeDeadlineSeconds": 999999, "template": {"spec": SMOKE}}}),
        "activeDeadlineSeconds",
    ),
    ("a web check without a URL", _check({"web": {"jsonPath": "ok"}}), "url"),
    ("a web check with a bad URL", _check({"web": {"url": "ftp://x/y"}}), "url"),
    ("a webhook without a URL", _check({"webhook": {}}), "url"),
    ("an unknown provider", _check({"datadog": {"query": "avg:x"}}), "datadog"),
    (
        "a metric with two providers",
        _check(
            {
                "web": {"url": "http://a/b"},
                "prometheus": {"address": "http://p:9090", "query": "up"},
            }
        ),
        "a metric has exactly one of",
    ),
    ("weight 120", lambda m: _step(m, {"setWeight": 120}), "setWeight"),
    ("weight -1", lambda m: _step(m, {"setWeight": -1}), "setWeight"),
    ("two actions in one step", lambda m: _step(m, {"setWeight": 10, "pause": {}}), "steps[0]"),
    ("empty step", lambda m: _step(m, {}), "steps[0]"),
    ("bad pause duration", lambda m: _step(m, {"pause": {"duration": "2 minutes"}}), "duration"),
    (
        "selector does not match template labels",
        lambda m: m["spec"]["selector"].update(matchLabels={"app": "other"}),
        "selector.matchLabels",
    ),
    (
        "missing template",
        lambda m: m["spec"].pop("template"),
        "exactly one of template or workloadRef must be set",
    ),
    ("negative replicas", lambda m: m["spec"].update(replicas=-3), "spec.replicas"),
    ("replicas not a number", lambda m: m["spec"].update(replicas="ten"), "spec.replicas"),
    ("missing selector", lambda m: m["spec"].pop("selector"), "selector is required with template"),
    ("empty selector", lambda m: m["spec"].update(selector={}), "selector"),
    ("no strategy", lambda m: m["spec"].update(strategy={}), "spec.strategy"),
    (
        "template without containers",
        lambda m: m["spec"]["template"]["spec"].update(containers=[]),
        "containers",
    ),
    (
        "zero progress deadline",
        lambda m: m["spec"].update(progressDeadlineSeconds=0),
        "progressDeadlineSeconds",
    ),
    ("maxSurge not a percentage", lambda m: _canary(m, maxSurge="lots"), "maxSurge"),
    (
        "maxUnavailable percent without %",
        lambda m: _canary(m, maxUnavailable="25"),
        "maxUnavailable",
    ),
    (
        "same stable and canary Service",
        lambda m: _canary(m, stableService="svc", canaryService="svc"),
        "canaryService",
    ),
    (
        "Service name not a DNS label",
        lambda m: _canary(m, stableService="Bad_Name"),
        "stableService",
    ),
    ("unknown field in a step", lambda m: _step(m, {"setWieght": 10}), "setWieght"),
    (
        "abortScaleDown not an option",
        lambda m: _canary(m, abortScaleDown="Later"),
        "abortScaleDown",
    ),
    (
        "maxSurge 0 with maxUnavailable 0",
        lambda m: _canary(m, maxSurge=0, maxUnavailable="0%"),
        "maxSurge and maxUnavailable must not both be zero",
    ),
    (
        "maxSurge 0% with the default maxUnavailable",
        lambda m: _canary(m, maxSurge="0%"),
        "maxSurge and maxUnavailable must not both be zero",
    ),
    ("both strategies", lambda m: _bg(m, keep_canary=True), "exactly one strategy"),
    ("blue-green without activeService", lambda m: _bg(m, activeService=None), "activeService"),
    (
        "same active and preview Service",
        lambda m: _bg(m, previewService="web"),
        "activeService and previewService",
    ),
    (
        "negative scaleDownDelaySeconds",
        lambda m: _bg(m, scaleDownDelaySeconds=-1),
        "scaleDownDelaySeconds",
    ),
    (
        "negative abortScaleDownDelaySeconds",
        lambda m: _bg(m, abortScaleDownDelaySeconds=-5),
        "abortScaleDownDelaySeconds",
    ),
    (
        "previewReplicaCount above replicas",
        lambda m: _bg(m, previewReplicaCount=5),
        "previewReplicaCount must not exceed replicas",
    ),
    ("previewReplicaCount 0", lambda m: _bg(m, previewReplicaCount=0), "previewReplicaCount"),
    (
        "autoPromotionSeconds not a number",
        lambda m: _bg(m, autoPromotionSeconds="soon"),
        "autoPromotionSeconds",
    ),
    (
        "activeService not a DNS label",
        lambda m: _bg(m, activeService="Web_Active"),
        "activeService",
    ),
    ("unknown blue-green field", lambda m: _bg(m, previewReplicas=1), "previewReplicas"),
    (
        "blue-green httpRoutes without previewService",
        lambda m: _bg(m, httpRoutes=["web"]),
        "httpRoutes needs previewService",
    ),
    (
        "previewHeaderRoute without httpRoutes",
        lambda m: _bg(
            m,
            previewService="web-preview",
            previewHeaderRoute=[{"headerName": "X-Preview", "headerValue": {"exact": "1"}}],
        ),
        "previewHeaderRoute needs httpRoutes",
    ),
    (
        "steps under blueGreen",
        lambda m: _bg(m, steps=[{"setWeight": 10}]),
        "steps",
    ),
]


@pytest.fixture(scope="module")
def refusals(cluster: ClusterHandle, crds: None) -> Iterator[str]:
    """One namespace for every refused Rollout (nothing is created in it: a namespace per
    case cost its creation and wait each time), outside the shared operator's ``t-*``."""
    with scratch_namespace(cluster, "refused") as ns:
        yield ns


def _names(cluster: ClusterHandle, namespace: str) -> list[str]:
    from kubernetes import client

    api = client.CustomObjectsApi(cluster.client)
    listed: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return [item["metadata"]["name"] for item in listed["items"]]


@pytest.mark.parametrize(
    ("mutate", "field"), [c[1:] for c in BAD_ROLLOUTS], ids=[c[0] for c in BAD_ROLLOUTS]
)
def test_api_server_rejects_bad_rollouts_naming_the_field(
    cluster: ClusterHandle, refusals: str, mutate: Any, field: str
) -> None:
    manifest = _bad(mutate)
    proc = cluster.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(manifest), namespace=refusals, check=False
    )
    if proc.returncode == 0:  # wrongly accepted: gone again, the next case starts clean
        cluster.kubectl("delete", "rollouts", "bad", namespace=refusals, check=False)
    assert proc.returncode != 0, f"accepted: {proc.stdout}"
    assert field in proc.stderr, proc.stderr
    assert "bad" not in _names(cluster, refusals)


def test_invalid_spec_condition_keeps_the_workload_and_the_operator_serving(
    rollouts: Rollouts,
) -> None:
    rollouts.create(rollout_manifest("good", replicas=3, steps=[{"setWeight": 50}]))
    rollouts.create(rollout_manifest("odd", replicas=3, steps=[{"setWeight": 50}]))
    rollouts.wait_healthy("good", 3)
    stable = rollouts.wait_healthy("odd", 3)["stableRevision"]

    # Passes the schema, but the label is reserved for the operator.
    rollouts.set_template_labels("odd", {"ramp.dev/role": "mine"})
    status = rollouts.wait_phase("odd", "Degraded")
    invalid = condition(status, "InvalidSpec")
    assert invalid["status"] == "True"
    assert "spec.template.metadata.labels" in invalid["message"]
    assert rollouts.wait_events("odd", "InvalidSpec", 1)

    # Passes the schema, but the API server refuses the Deployment (container has no name).
    rollouts.set_template_labels("odd", {"ramp.dev/role": None})
    rollouts.wait_healthy("odd", 3)
    obj = rollouts.get("odd")
    containers = copy.deepcopy(obj["spec"]["template"]["spec"]["containers"])
    containers[0].pop("name")
    rollouts.patch("odd", {"spec": {"template": {"spec": {"containers": containers}}}})
    status = rollouts.wait_phase("odd", "Degraded")
    assert "spec.template" in condition(status, "InvalidSpec")["message"]

    # The workload keeps serving the stable version.
    time.sleep(1)
    assert rollouts.ready_pods("odd") == {stable: 3}

    # The operator keeps serving other Rollouts.
    rollouts.set_image("good", "ramp-test/app:v2")
    new = rollouts.wait("good", "a canary", lambda s: bool(s.get("canaryRevision")))[
        "canaryRevision"
    ]
    assert rollouts.wait_healthy("good", 3)["stableRevision"] == new

    # Fixing the template recovers.
    containers[0]["name"] = "app"
    containers[0]["image"] = "ramp-test/app:v3"
    rollouts.patch("odd", {"spec": {"template": {"spec": {"containers": containers}}}})
    rollouts.wait(
        "odd", "valid again", lambda s: condition(s, "InvalidSpec").get("status") == "False"
    )
    rollouts.wait("odd", "promoted", lambda s: s.get("stableRevision") not in (None, stable))
