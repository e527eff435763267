"""The operator's /metrics, /healthz and /readyz on the real cluster: after a rollout and
two aborts, every series says exactly what happened to this test's Rollouts."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle

STEPS: list[dict[str, Any]] = [
    {"setWeight": 50},
    {"pause": {"duration": "1s"}},
    {"setWeight": 80},
    {"pause": {}},
]


def scrape(operator: OperatorProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(operator.scrape()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> dict[frozenset[tuple[str, str]], float]:
    """Samples of a metric whose labels include ``labels``."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= k[1]}


def test_metrics_after_a_rollout_and_two_aborts(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    ns = rollouts.ns
    rollouts.create(rollout_manifest("web", replicas=4, steps=STEPS))
    first = rollouts.wait_healthy("web", 4)["stableRevision"]

    # A canary that completes: three steps by themselves, the last pause promoted.
    rollouts.set_image("web", "ramp-test/app:v2")
    rollouts.wait("web", "paused at the last step", lambda s: s.get("phase") == "Paused")
    m = scrape(operator)
    canary = rollouts.status("web")["canaryRevision"]
    assert value(m, "ramp_rollout_phase", namespace=ns, rollout="web", phase="Paused") == 1
    assert value(m, "ramp_rollout_phase", namespace=ns, rollout="web", phase="Healthy") == 0
    assert (
        value(
            m,
            "ramp_rollout_info",
            namespace=ns,
            rollout="web",
            stable_revision=first,
            canary_revision=canary,
        )
        == 1
    )
    assert (
        value(m, "ramp_rollout_weight_percent", namespace=ns, rollout="web", kind="desired") == 80
    )
    held = rollouts.status("web").get("release") or {}
    assert held.get("revision") == canary and held.get("pausedSince"), held
    time.sleep(2)  # held long enough to tell from the status' whole seconds
    rollouts.request("web", "promote")
    done = rollouts.wait_healthy("web", 4)
    assert done["stableRevision"] == canary

    def settled() -> dict[Any, float] | None:
        m = scrape(operator)
        healthy = value(m, "ramp_rollout_phase", namespace=ns, rollout="web", phase="Healthy")
        return m if healthy == 1 else None

    m = wait_for("the Healthy phase in /metrics", settled, timeout=10)
    assert value(m, "ramp_step_transitions_total", namespace=ns, rollout="web") == 3
    assert value(m, "ramp_rollouts_completed_total", namespace=ns, rollout="web") == 1
    infos = series(m, "ramp_rollout_info", namespace=ns, rollout="web")
    assert infos == {
        frozenset(
            {
                ("namespace", ns),
                ("rollout", "web"),
                ("stable_revision", canary),
                ("canary_revision", ""),
            }
        ): 1
    }
    assert not series(m, "ramp_aborts_total", namespace=ns)
    # The release's durations: held at the last (indefinite) pause until promoted.
    done_labels = {"namespace": ns, "strategy": "canary", "outcome": "Completed"}
    assert value(m, "ramp_release_duration_seconds_count", **done_labels) == 1
    total = value(m, "ramp_release_duration_seconds_sum", **done_labels) or 0
    paused = value(m, "ramp_release_paused_seconds_sum", **done_labels) or 0
    progression = value(m, "ramp_release_progression_seconds_sum", **done_labels) or 0
    assert 1 <= paused < total and progression > 0, (total, paused, progression)
    assert abs(total - paused - progression) < 0.01
    aborted_labels = {"namespace": ns, "strategy": "canary", "outcome": "Aborted"}
    assert value(m, "ramp_release_duration_seconds_count", **aborted_labels) == 0  # primed
    assert "release" not in done  # no release in progress, no record left

    # A user abort, then a canary that never becomes ready (progress deadline).
    rollouts.set_image("web", "ramp-test/app:v3")
    rollouts.wait("web", "paused again", lambda s: s.get("phase") == "Paused")
    rollouts.request("web", "abort")
    rollouts.wait("web", "aborted", lambda s: s.get("phase") == "Aborted")
    rollouts.create(rollout_manifest("api", replicas=2, steps=STEPS, deadline=3))
    rollouts.wait_healthy("api", 2)
    rollouts.set_template_labels("api", {"ramp.dev/test-fault": "never-ready"})
    rollouts.wait("api", "aborted at the deadline", lambda s: s.get("phase") == "Aborted")

    def both_aborted() -> dict[Any, float] | None:
        m = scrape(operator)
        phases = [
            value(m, "ramp_rollout_phase", namespace=ns, rollout=r, phase="Aborted")
            for r in ("web", "api")
        ]
        return m if phases == [1, 1] else None

    m = wait_for("both Rollouts Aborted in /metrics", both_aborted, timeout=10)
    aborts = series(m, "ramp_aborts_total", namespace=ns)
    assert aborts == {
        frozenset({("namespace", ns), ("rollout", "web"), ("reason", "UserAbort")}): 1,
        frozenset(
            {("namespace", ns), ("rollout", "api"), ("reason", "ProgressDeadlineExceeded")}
        ): 1,
    }
    # web: three steps of v2, three of v3 before its abort; api: none. As the Events say.
    assert value(m, "ramp_step_transitions_total", namespace=ns, rollout="web") == 6
    assert rollouts.step_history("web") == [0, 1, 2]  # v3's steps (the status keeps the last)
    assert not value(m, "ramp_step_transitions_total", namespace=ns, rollout="api")
    assert value(m, "ramp_rollouts_completed_total", namespace=ns, rollout="web") == 1
    assert value(m, "ramp_release_duration_seconds_count", **aborted_labels) == 2
    assert value(m, "ramp_release_duration_seconds_count", **done_labels) == 1
    for r in ("web", "api"):
        phases = series(m, "ramp_rollout_phase", namespace=ns, rollout=r)
        assert sorted(phases.values()) == [0, 0, 0, 0, 1], phases  # one phase at a time

    # Operator-wide series.
    count = value(m, "ramp_reconcile_duration_seconds_count") or 0
    assert count >= 6 and (value(m, "ramp_reconcile_duration_seconds_sum") or 0) > 0
    assert value(m, "ramp_reconcile_duration_seconds_bucket", le="+Inf") == count
    for verdict in ("Pass", "Fail", "Inconclusive", "Error"):
        assert value(m, "ramp_gate_measurements_total", verdict=verdict) is not None
    assert value(m, "ramp_leader") == 1
    assert (value(m, "ramp_api_requests_total", kind="write") or 0) > 0

    # A deleted Rollout's series go away.
    rollouts.custom.delete_namespaced_custom_object("ramp.dev", "v1alpha1", ns, "rollouts", "api")
    wait_for(
        "api's series to disappear",
        lambda: not series(scrape(operator), "ramp_rollout_phase", namespace=ns, rollout="api"),
        timeout=15,
    )


def test_kubectl_get_shows_a_healthy_rollout_at_100_on_its_stable(
    rollouts: Rollouts, cluster: ClusterHandle
) -> None:
    """The CRD's printer columns, as the API server's table serves them to kubectl."""
    rollouts.create(rollout_manifest("shown", replicas=2, steps=STEPS))
    rollouts.wait_healthy("shown", 2)

    def row() -> dict[str, str] | None:
        out = cluster.kubectl("get", "rollout", "shown", namespace=rollouts.ns).stdout
        header, line = out.splitlines()
        starts = [m.start() for m in re.finditer(r"\S+", header)]  # aligned columns
        ends = [*starts[1:], None]
        table = {header[a:b].strip(): line[a:b].strip() for a, b in zip(starts, ends, strict=True)}
        return table if table.get("ACTUAL") == "100" else None

    table = wait_for("kubectl get rollout to show the weights", row, timeout=15)
    assert table["PHASE"] == "Healthy" and table["DESIRED"] == "100", table
    assert table["READY"] == "2" and table["STEP"] == "", table


def test_health_and_readiness_endpoints(operator: OperatorProcess) -> None:
    url = operator.probes_url()  # a port of their own, without authentication
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        body = json.loads(resp.read())
    assert body["status"] == "ok" and body["acting"] is True
    with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
        assert resp.status == 200
    try:
        urllib.request.urlopen(url + "/nope", timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("an unknown path answered")


def test_blue_green_series_count_the_switch_and_the_rollback(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    from test_bluegreen import bg_manifest, services

    ns, name = rollouts.ns, "bgm"
    services(rollouts, name)
    rollouts.create(bg_manifest(name, scaleDownDelaySeconds=30))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    labels = {"namespace": ns, "rollout": name}
    wait_for(
        "the blue-green info series",
        lambda: series(scrape(operator), "ramp_bluegreen_info", active_revision=blue, **labels),
    )
    rollouts.set_image(name, "ramp-test/app:v2")
    green = rollouts.wait(name, "switched", lambda s: s.get("stableRevision") not in (None, blue))[
        "stableRevision"
    ]
    wait_for(
        "one switch counted",
        lambda: value(scrape(operator), "ramp_bluegreen_switches_total", **labels) == 1,
    )
    m = scrape(operator)
    assert series(m, "ramp_bluegreen_info", active_revision=green, **labels), m
    assert not value(m, "ramp_bluegreen_flipbacks_total", **labels)
    rollouts.request(name, "rollback")  # blue is warm for 30 s
    rollouts.wait(
        name, "back on blue", lambda s: (s.get("blueGreen") or {}).get("activeRevision") == blue
    )
    wait_for(
        "one flip-back counted",
        lambda: value(scrape(operator), "ramp_bluegreen_flipbacks_total", **labels) == 1,
    )
    assert value(scrape(operator), "ramp_bluegreen_switches_total", **labels) == 1
