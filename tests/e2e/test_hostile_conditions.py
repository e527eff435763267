"""A tenant's hostile CEL condition cannot freeze the operator (issue 20, "the freeze").

On f61a406 about 720 characters of nested ``all()`` macros over small lists evaluated for
years on the event loop, holding the GIL: reconciles, Lease renewal and ``/healthz``
stopped for every tenant. Now:

* the plain attack is refused by the API server (the CRD's rules on the condition field:
  at most one macro, no list literals), with the field named;
* a variant that slips past those regular expressions (comments hide the macros and the
  list literals) is refused by the operator's guard before anything evaluates it, with the
  field named in the Rollout's status, while ``/healthz`` keeps answering within 1 s and
  another Rollout completes.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
import yaml
from ramp_e2e import OperatorProcess, Rollouts, Sampling, rollout_manifest

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer


def freeze_attack(levels: int = 48) -> str:
    """The issue's attack: ``[1,2,3].all(a0, [1,2,3].all(a1, ... true))``."""
    text = "true"
    for level in reversed(range(levels)):
        text = f"[1,2,3].all(a{level},{text})"
    return text


def hidden_attack(levels: int = 30) -> str:
    """The same, with ``//`` comments between the macros and their parentheses and before
    the list literals, which the CRD's regular expressions do not see through (3**30
    evaluations)."""
    text = "true"
    for level in reversed(range(levels)):
        text = f"(//c\n[1,2,3]).all//c\n(a{level}, {text})"
    return text


def with_condition(name: str, address: str, condition: str) -> dict[str, Any]:
    metric = {
        "name": "hostile",
        "interval": "1s",
        "successCondition": condition,
        "prometheus": {"address": address, "query": "vector(1)"},
    }
    steps = [{"setWeight": 50}, {"analysis": {"metrics": [metric]}}]
    return rollout_manifest(name, replicas=2, steps=steps)


class HealthProbe(Sampling[float]):
    """GETs ``/healthz`` every 0.2 s in a thread and records how long each answer took
    (a failed or timed-out request counts as its timeout)."""

    interval = 0.2

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def sample(self) -> float:
        start = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                resp.read()
                return time.monotonic() - start if resp.status == 200 else 5.0
        except Exception:
            return 5.0


def test_the_api_server_refuses_the_freeze_naming_the_field(
    cluster: ClusterHandle, namespace: str, crds: None
) -> None:
    manifest = with_condition("frozen", "http://127.0.0.1:9", freeze_attack())
    assert 650 <= len(freeze_attack()) <= 1024
    proc = cluster.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(manifest), namespace=namespace, check=False
    )
    assert proc.returncode != 0, f"accepted: {proc.stdout}"
    assert "successCondition" in proc.stderr, proc.stderr
    assert "at most one macro" in proc.stderr or "list literals" in proc.stderr, proc.stderr


def test_a_hidden_freeze_is_refused_while_the_operator_serves_everyone(
    rollouts: Rollouts, operator: OperatorProcess, prometheus: PrometheusServer
) -> None:
    rollouts.create(with_condition("hostile", prometheus.url, hidden_attack()))
    rollouts.create(rollout_manifest("calm", replicas=2, steps=[{"setWeight": 50}]))
    rollouts.wait_healthy("hostile", 2)
    rollouts.wait_healthy("calm", 2)

    with HealthProbe(operator.probes_url() + "/healthz") as probe:
        rollouts.set_image("hostile", "ramp-test/app:v2")
        refused = rollouts.wait(
            "hostile",
            "the analysis refused",
            lambda s: "not allowed" in str(s.get("message") or ""),
            timeout=60,
        )
        rollouts.set_image("calm", "ramp-test/app:v2")
        calm = rollouts.wait("calm", "a canary", lambda s: bool(s.get("canaryRevision")))
        done = rollouts.wait_healthy("calm", 2, timeout=90)
        assert done["stableRevision"] == calm["canaryRevision"]
        time.sleep(1)  # a few more probes after the refusal
    message = str(refused["message"])
    assert "successCondition" in message and "comments are not allowed" in message, message
    assert len(probe.samples) >= 5, probe.samples
    assert max(probe.samples) < 1.0, f"/healthz took {max(probe.samples):.2f}s"
    assert operator.alive


pytestmark = pytest.mark.timeout(240)
