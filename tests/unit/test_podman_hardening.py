"""The container test runs the image with the chart's own security context: the podman
flags come from the chart's pod spec (tests/image/podman.py), and a field the mapping does
not know is refused instead of being dropped silently."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from image.podman import REPO, hardening

VALUES = yaml.safe_load((REPO / "charts/ramp/values.yaml").read_text())


def deployment(pod_sc: dict[str, Any], container_sc: dict[str, Any]) -> dict[str, Any]:
    """The shape the chart's templates/deployment.yaml renders, with the given contexts."""
    return {
        "spec": {
            "template": {
                "spec": {
                    "terminationGracePeriodSeconds": VALUES["terminationGracePeriodSeconds"],
                    "securityContext": copy.deepcopy(pod_sc),
                    "containers": [
                        {
                            "name": "operator",
                            "args": ["--metrics-port=8080"],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {"name": "HOME", "value": "/tmp"},
                            ],
                            "securityContext": copy.deepcopy(container_sc),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": VALUES["tmpSizeLimit"]}}],
                }
            }
        }
    }


def chart_default() -> dict[str, Any]:
    return deployment(VALUES["podSecurityContext"], VALUES["containerSecurityContext"])


def test_the_charts_defaults_become_the_hardened_podman_flags() -> None:
    h = hardening(chart_default(), field_refs={"metadata.name": "pod-a"})
    flags = " ".join(h.flags)
    assert "--user 65532:65532" in flags
    assert "--cap-drop ALL" in flags and "--cap-add" not in flags
    assert "--security-opt no-new-privileges" in flags
    assert "--read-only --read-only-tmpfs=false" in flags
    assert "--tmpfs /tmp:rw,mode=1777,nosuid,nodev,size=67108864" in flags
    assert "--privileged" not in flags and "seccomp=unconfined" not in flags
    assert h.env == {"POD_NAME": "pod-a", "HOME": "/tmp"}
    assert h.grace_seconds == 30 and h.args == ["--metrics-port=8080"]


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("container", "privileged", False),
        ("container", "procMount", "Default"),
        ("pod", "sysctls", []),
        ("pod", "supplementalGroups", [1]),
    ],
)
def test_an_unmapped_field_is_refused(where: str, key: str, value: Any) -> None:
    pod_sc = copy.deepcopy(VALUES["podSecurityContext"])
    container_sc = copy.deepcopy(VALUES["containerSecurityContext"])
    (pod_sc if where == "pod" else container_sc)[key] = value
    with pytest.raises(AssertionError, match=key):
        hardening(deployment(pod_sc, container_sc))


def test_a_weaker_chart_gives_weaker_flags_not_the_same_ones() -> None:
    """The flags follow the chart: if the chart stopped dropping capabilities or made the
    root filesystem writable, the container test would run (and be judged) that way."""
    container_sc = copy.deepcopy(VALUES["containerSecurityContext"])
    container_sc["readOnlyRootFilesystem"] = False
    container_sc["capabilities"] = {"drop": ["NET_RAW"]}
    container_sc["allowPrivilegeEscalation"] = True
    weaker = deployment(VALUES["podSecurityContext"], container_sc)
    flags = " ".join(hardening(weaker, field_refs={"metadata.name": "p"}).flags)
    assert "--read-only" not in flags and "no-new-privileges" not in flags
    assert "--cap-drop NET_RAW" in flags and "--cap-drop ALL" not in flags
    other = copy.deepcopy(VALUES["podSecurityContext"])
    other["seccompProfile"] = {"type": "Unconfined"}
    with pytest.raises(AssertionError, match="Unconfined"):
        hardening(deployment(other, VALUES["containerSecurityContext"]))
