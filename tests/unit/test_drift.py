"""Template drift (issue 19, class 9): a child's stored pod template against the one its
revision was made from, defaults and canonical quantities being no difference."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ramp.api.labels import REVISION_LABEL, TEMPLATE_ANNOTATION, revision_hash
from ramp.core.drift import template_drift
from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_deployment

WRITTEN: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "ports": [{"containerPort": 8080}],
                "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
            }
        ]
    },
}
REV = revision_hash(WRITTEN)


def stored() -> dict[str, Any]:
    """What the API server keeps of it: defaults added, quantities canonical."""
    return {
        "metadata": {"creationTimestamp": None, "labels": {"app": "web", REVISION_LABEL: REV}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
                        "periodSeconds": 10,
                        "timeoutSeconds": 1,
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }


def test_a_template_as_the_api_server_keeps_it_is_no_drift() -> None:
    assert template_drift(WRITTEN, stored(), REV) is None


def _image(t: dict[str, Any]) -> None:
    t["spec"]["containers"][0]["image"] = "app:2"


def _env(t: dict[str, Any]) -> None:
    t["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]


def _limits(t: dict[str, Any]) -> None:
    t["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1"}


def _cpu(t: dict[str, Any]) -> None:
    t["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "600m"


def _sidecar(t: dict[str, Any]) -> None:
    t["spec"]["containers"].append({"name": "b", "image": "b:1"})


def _revision_label(t: dict[str, Any]) -> None:
    t["metadata"]["labels"][REVISION_LABEL] = "other"


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_image, "spec.containers[0].image"),
        (_env, "spec.containers[0].env"),
        (_limits, "spec.containers[0].resources.limits"),
        (_cpu, "spec.containers[0].resources.requests.cpu"),
        (_sidecar, "spec.containers"),
        (_revision_label, f"metadata.labels.{REVISION_LABEL}"),
    ],
    ids=["set-image", "set-env", "set-resources", "request-changed", "sidecar", "relabel"],
)
def test_an_edit_by_someone_else_is_drift_naming_the_field(edit: Any, path: str) -> None:
    have = stored()
    edit(have)
    assert template_drift(WRITTEN, have, REV) == f"{path} differs from the revision"


def test_a_rollout_restart_annotation_is_no_drift() -> None:
    have = stored()
    have["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    assert template_drift(WRITTEN, have, REV) is None


def test_a_recorded_template_that_is_not_the_revisions_is_drift() -> None:
    other = copy.deepcopy(WRITTEN)
    _image(other)
    assert template_drift(other, stored(), REV) is not None
    assert template_drift(None, stored(), REV) == "it records no template of its revision"


def deployment(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{REV}",
            "labels": {REVISION_LABEL: REV},
            "annotations": {TEMPLATE_ANNOTATION: json.dumps(WRITTEN)},
            "generation": 1,
        },
        "spec": {"replicas": 2, "template": template},
        "status": {"observedGeneration": 1},
    }


def test_the_index_summary_keeps_the_drift_of_the_whole_deployment() -> None:
    body = deployment(stored())
    assert child_from_deployment(body).drift is None
    _image(body["spec"]["template"])
    drift = child_from_deployment(body).drift
    assert drift == "spec.containers[0].image differs from the revision"
    assert child_from_deployment(summarize_deployment(body)).drift == drift
