"""A flapping metric cannot flood Events nor push another tenant's abort out of the
notification queue (issue 20, floods), on the real cluster with the real Prometheus.

Tenant A's Rollout runs sixteen metrics whose answer alternates between one sample (the
condition passes) and two (the condition errs), measured every second: on f61a406 every
flip was a new Event and a queued notification, many a second, and with a slow sink and a
small queue tenant B's ``aborted`` notification was dropped. Now A's Events are counted
on a few objects and rate-limited, A's notifications are held to the namespace quota and
to a quarter of the queue, and B's abort is delivered.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for
from ramp_e2e_notify import Sink, notifying_operator

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer
from ramp.shell.adapters.events import BURST, REFILL
from ramp.shell.adapters.notify.notifier import NAMESPACE_BURST, NAMESPACE_REFILL, WORKERS

METRICS = 16
FLAPPING = (
    'vector(1) or (label_replace(vector(1), "x", "y", "", "") and on() (vector(time() % 2) >= 1))'
)
"""One sample in even seconds, two in odd ones: ``result < 2.0`` passes on the scalar and
is an Error on the list."""
CONFIG = """
sinks:
  - name: hooks
    type: webhook
    urlKey: hooks-url
    triggers: [analysis, aborted, started, paused]
delivery: {maxAttempts: 1, timeout: 5s, queueSize: 10}
"""


class SlowSink(Sink):
    """Answers 204 after 1 s; ``of()``: (monotonic time, namespace, trigger) received."""

    def __init__(self) -> None:
        super().__init__(delay=1.0)

    def of(self, namespace: str, trigger: str | None = None) -> list[tuple[float, str, str]]:
        received = [(t, b["rollout"]["namespace"], b["trigger"]) for t, _, _, b in self.posts()]
        return [r for r in received if r[1] == namespace and trigger in (None, r[2])]


def flapping_rollout(address: str) -> dict[str, Any]:
    metrics = [
        {
            "name": f"flap-{i}",
            "interval": "1s",
            "count": 1000,
            "consecutiveErrorLimit": 1000,
            "successCondition": "result < 2.0",
            "prometheus": {"address": address, "query": FLAPPING},
        }
        for i in range(METRICS)
    ]
    steps = [{"setWeight": 50}, {"analysis": {"metrics": metrics}}]
    return rollout_manifest("flapper", replicas=2, steps=steps)


@pytest.fixture
def tenants(
    cluster: ClusterHandle, crds: None, prometheus: PrometheusServer
) -> Iterator[tuple[Rollouts, Rollouts, SlowSink, OperatorProcess]]:
    prefix = f"flood-{secrets.token_hex(3)}"
    a, b = f"{prefix}-a", f"{prefix}-b"
    sink = SlowSink()
    for ns in (a, b):
        cluster.kubectl("create", "namespace", ns)
    operator = notifying_operator(
        cluster, a, CONFIG, {"hooks-url": f"{sink.url}/hook"}, sink,
        ["--namespace", a, "--namespace", b, "--prometheus-allow", prometheus.url],
        f"operator-{prefix}.log",
    )  # fmt: skip
    try:
        yield Rollouts(cluster.client, a), Rollouts(cluster.client, b), sink, operator
    finally:
        operator.stop()
        sink.close()
        for ns in (a, b):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_flapping_metric_is_bounded_and_another_tenants_abort_gets_through(
    tenants: tuple[Rollouts, Rollouts, SlowSink, OperatorProcess],
    prometheus: PrometheusServer,
) -> None:
    team_a, team_b, sink, operator = tenants
    team_a.create(flapping_rollout(prometheus.url))
    team_b.create(rollout_manifest("victim", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}]))
    team_a.wait_healthy("flapper", 2)
    team_b.wait_healthy("victim", 2)

    team_a.set_image("flapper", "ramp-test/app:v2")
    started = time.monotonic()

    def flapping() -> bool:
        reasons = {reason for _, reason, _ in team_a.events("flapper")}
        return {"AnalysisPass", "AnalysisError"} <= reasons

    wait_for("the metrics to flap", flapping, timeout=60, describe=lambda: operator.tail(20))
    team_b.set_image("victim", "ramp-test/app:v2")
    team_b.wait_phase("victim", "Paused", timeout=60)
    time.sleep(10)  # the flood goes on
    team_b.request("victim", "abort")
    team_b.wait_phase("victim", "Aborted", timeout=30)
    aborted_seen = time.monotonic()
    abort = wait_for(
        "tenant B's aborted notification",
        lambda: sink.of(team_b.ns, "aborted"),
        timeout=30,
        describe=lambda: f"received: {len(sink.posts())}; {operator.tail(20)}",
    )[0]
    elapsed = time.monotonic() - started
    # Aborts go first: only what the two workers already held is delivered before it (on
    # f61a406 it waited behind the queue, up to eight more of A's).
    ahead = [r for r in sink.of(team_a.ns) if aborted_seen < r[0] < abort[0]]
    assert len(ahead) <= WORKERS + 1, ahead

    events = team_a.core.list_namespaced_event(
        team_a.ns, field_selector="involvedObject.name=flapper,involvedObject.kind=Rollout"
    ).items
    analysis = [e for e in events if e.reason.startswith("Analysis")]
    flips = sum(e.count or 1 for e in analysis)
    writes_allowed = BURST + elapsed / REFILL + 2
    print(
        f"\nflood: {elapsed:.0f}s, {len(analysis)} analysis Events counting {flips} flips, "
        f"{len(sink.of(team_a.ns))} notifications of A delivered"
    )
    assert len(analysis) <= 2 * METRICS, [(e.reason, e.message) for e in analysis]
    assert flips <= writes_allowed, (flips, writes_allowed)
    delivered_a = len(sink.of(team_a.ns))
    assert delivered_a <= NAMESPACE_BURST + elapsed / NAMESPACE_REFILL + 2, delivered_a
    assert "rate-limited" in operator.log_text()
    assert "over its quota" in operator.log_text()


pytestmark = pytest.mark.timeout(300)
