"""Notifications from the running operator to HTTP sinks on 127.0.0.1, on the real cluster;
and every PromQL expression of the Grafana dashboard answered by a real Prometheus that
scrapes the same operator.

One operator of its own (``--notify-config``) watches a namespace of this test; the sinks
are a CloudEvents receiver that answers 204 and checks the bearer token, a webhook that
always answers 500 (retried with backoff, then reported), and a URL that is not on the
allow-list (refused at start-up with the reason, never contacted).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ramp_e2e import REPO, Rollouts, rollout_manifest, wait_for
from ramp_e2e_notify import Sink, notifying_operator

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer

TOKEN = "notify-e2e-bearer-" + secrets.token_hex(6)
STEPS = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]


class CloudEventsSink(Sink):
    def events(self, rollout: str) -> list[dict[str, Any]]:
        return [r[3] for r in self.posts("/ok") if r[3]["data"]["rollout"]["name"] == rollout]


def config(sink: CloudEventsSink) -> str:
    return """
sinks:
  - name: hooks
    type: cloudevents
    urlKey: hooks-url
    tokenKey: hooks-token
    triggers: [started, paused, aborted, completed, analysis]
  - name: flaky
    type: webhook
    urlKey: flaky-url
    triggers: [aborted]
  - name: inside
    type: webhook
    urlKey: inside-url
delivery: {maxAttempts: 3, initialBackoff: 0.5s, maxBackoff: 4s, timeout: 2s}
"""


@pytest.fixture(scope="module")
def scenario(cluster: ClusterHandle, crds: None) -> Iterator[SimpleNamespace]:
    """One operator with three sinks and a Prometheus scraping it; two Rollouts ("loud"
    notifies, "quiet" opts out) roll out side by side, then "loud" is aborted."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("no prometheus binary: run `make prometheus-install`", pytrace=False)
    ns = f"notify-{secrets.token_hex(3)}"
    sink = CloudEventsSink()
    cluster.kubectl("create", "namespace", ns)
    secret = {
        "hooks-url": f"{sink.url}/ok/hooks",
        "hooks-token": TOKEN,
        "flaky-url": f"{sink.url}/fail/flaky",
        "inside-url": "https://kubernetes.default.svc/api/v1/secrets",
    }
    operator = notifying_operator(
        cluster, ns, config(sink), secret, sink,
        ["--namespace", ns, "--metrics-auth=none"],  # Prometheus scrapes it
        f"operator-{ns}.log",
    )  # fmt: skip
    prometheus: PrometheusServer | None = None
    try:
        target = operator.metrics_url().removeprefix("http://")
        workdir = cluster.workdir / f"prometheus-{ns}"
        workdir.mkdir()
        prometheus = PrometheusServer(binary, workdir, SimpleNamespace(target=target))  # type: ignore[arg-type]
        prometheus.start()
        rollouts = Rollouts(cluster.client, ns)

        quiet = rollout_manifest("quiet", replicas=4, steps=STEPS)
        quiet["metadata"]["annotations"] = {"ramp.dev/notify": "none"}
        rollouts.create(rollout_manifest("loud", replicas=4, steps=STEPS))
        rollouts.create(quiet)
        held = rollout_manifest("held", replicas=2, steps=[{"setWeight": 50}, {"pause": {}}])
        rollouts.create(held)
        rollouts.wait_healthy("loud", 4)
        rollouts.wait_healthy("quiet", 4)
        rollouts.wait_healthy("held", 2)
        rollouts.set_image("held", "ramp-test/app:v2")
        start = time.monotonic()
        rollouts.set_image("loud", "ramp-test/app:v2")
        rollouts.set_image("quiet", "ramp-test/app:v2")
        done: dict[str, float] = {}

        def completed(name: str) -> bool:
            obj = rollouts.get(name)
            status = obj.get("status") or {}
            return (
                status.get("phase") == "Healthy"
                and not status.get("canaryRevision")
                and status.get("observedGeneration") == obj["metadata"]["generation"]
            )

        def both() -> bool:
            for name in ("loud", "quiet"):
                if name not in done and completed(name):
                    done[name] = time.monotonic() - start
            return len(done) == 2

        wait_for("both rollouts to complete", both, timeout=60)
        rollouts.wait_phase("held", "Paused", timeout=30)
        canary = rollouts.status("loud")["stableRevision"]

        rollouts.set_image("loud", "ramp-test/app:v3")
        rollouts.wait("loud", "a canary", lambda s: bool(s.get("canaryRevision")), timeout=30)
        aborted_at = time.monotonic()
        rollouts.request("loud", "abort")
        rollouts.wait_phase("loud", "Aborted", timeout=30)
        wait_for("three attempts at the failing sink", lambda: len(sink.posts("/fail")) >= 3)
        yield SimpleNamespace(
            ns=ns,
            sink=sink,
            operator=operator,
            prometheus=prometheus,
            rollouts=rollouts,
            done=done,
            canary=canary,
            aborted_at=aborted_at,
        )
    finally:
        if prometheus is not None:
            prometheus.stop()
        operator.stop()
        sink.close()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_notifications_delivered_retried_refused_and_secret(scenario: SimpleNamespace) -> None:
    sink, rollouts, operator, done = (
        scenario.sink,
        scenario.rollouts,
        scenario.operator,
        scenario.done,
    )
    ns = scenario.ns
    log = operator.log_text()
    assert "sink inside" in log and "https://kubernetes.default.svc:443" in log
    assert "not on the notification allow-list" in log

    def triggers() -> list[str]:
        return [e["data"]["trigger"] for e in sink.events("loud")]

    wait_for("the aborted notification", lambda: "aborted" in triggers(), timeout=15)
    assert triggers()[:2] == ["started", "completed"], triggers()
    assert sink.events("quiet") == []
    wait_for("the paused notification", lambda: sink.events("held"), timeout=10)
    paused = [e["data"] for e in sink.events("held") if e["data"]["trigger"] == "paused"]
    assert len(paused) == 1, sink.events("held")
    assert paused[0]["why"] == "PauseStep" and "until promoted" in paused[0]["message"]
    assert paused[0]["phase"] == "Paused" and paused[0]["weights"]["desired"] == 50
    started, completed, aborted = (
        next(e for e in sink.events("loud") if e["data"]["trigger"] == t)
        for t in ("started", "completed", "aborted")
    )
    assert started["specversion"] == "1.0" and started["type"] == "dev.ramp.rollout.started"
    assert started["subject"] == f"{ns}/loud"
    assert started["source"] == f"/apis/ramp.dev/v1alpha1/namespaces/{ns}/rollouts/loud"
    assert started["data"]["reason"] == "RolloutStarted"
    assert scenario.canary in completed["data"]["message"]
    assert aborted["data"]["reason"] == "Aborted" and "aborted" in aborted["data"]["message"]
    assert aborted["data"]["rollout"]["uid"] == rollouts.get("loud")["metadata"]["uid"]
    for _, _, headers, _ in sink.posts("/ok"):
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Content-Type"].startswith("application/cloudevents+json")
    latency = [
        t - scenario.aborted_at
        for t, _, _, body in sink.posts("/ok")
        if body["data"]["trigger"] == "aborted"
    ]

    # The failing sink: three attempts with growing gaps, then a Warning Event.
    times = [t for t, *_ in sink.posts("/fail")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.35 and gaps[1] >= 0.75, gaps
    failed = rollouts.wait_events("loud", "NotificationFailed", 1, timeout=15)
    assert "sink flaky failed after 3 attempt(s): HTTP 500" in failed[0][2]
    time.sleep(1)
    assert len(sink.posts("/fail")) == 3  # maxAttempts

    # Metrics say which sink fails; the loud rollout was as fast as the quiet one.
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(operator.scrape())
        for s in family.samples
    }
    assert samples[("ramp_notification_sink_up", frozenset({("sink", "flaky")}))] == 0
    assert samples[("ramp_notification_sink_up", frozenset({("sink", "hooks")}))] == 1
    assert samples[("ramp_notification_sinks_refused", frozenset())] == 1
    failed_key = frozenset({("sink", "flaky"), ("trigger", "aborted"), ("outcome", "failed")})
    assert samples[("ramp_notifications_total", failed_key)] == 1
    assert done["loud"] < done["quiet"] + 1.5, done  # a failing sink slows nothing

    # The token is in no log line, status or Event.
    assert TOKEN not in operator.log_text()
    for name in ("loud", "quiet"):
        assert TOKEN not in json.dumps(rollouts.get(name))
        assert TOKEN not in json.dumps(rollouts.events(name))
        assert "/fail/flaky" not in json.dumps(rollouts.events(name))
    print(
        f"\nnotifications: rollout loud {done['loud']:.1f}s vs quiet {done['quiet']:.1f}s; "
        f"abort request to CloudEvents delivery {latency[0] * 1000:.0f} ms"
    )


DASHBOARD = REPO / "docs" / "grafana" / "ramp-dashboard.json"
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__range": "1h",
    "$namespace": ".*",
    "$rollout": ".*",
}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, Grafana's variables substituted."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown variable in {expr}"
            out.append((panel["title"], expr))
    for variable in board["templating"]["list"]:
        found = re.match(r"label_values\((\w+)", variable.get("definition", ""))
        if found:
            out.append((f"variable {variable['name']}", found.group(1)))
    return out


def test_every_grafana_panel_has_data(scenario: SimpleNamespace) -> None:
    chart = (REPO / "charts" / "ramp" / "dashboards" / "ramp.json").read_text()
    assert chart == DASHBOARD.read_text(), "the chart's dashboard and docs/grafana differ"
    prometheus: PrometheusServer = scenario.prometheus
    queries = dashboard_queries()
    assert len(queries) >= 20
    empty: list[str] = []

    def answered() -> bool:
        empty.clear()
        for title, expr in queries:
            if not [v for _, v in prometheus.query(expr) if v == v]:  # NaN is no data
                empty.append(f"{title}: {expr}")
        return not empty

    wait_for("data for every panel", answered, timeout=20, describe=lambda: "\n".join(empty))


def test_chart_ships_the_dashboard_and_reads_only_its_notification_objects(
    cluster: ClusterHandle,
) -> None:
    import yaml

    rendered = cluster.helm(
        "template", "r", str(REPO / "charts" / "ramp"), "--namespace", "ops",
        "--set", "grafana.dashboard.enabled=true",
        "--set", "notifications.enabled=true",
        "--set", "notifications.allow[0]=https://hooks.example/services",
        "--set", "notifications.sinks[0].name=ops",
        "--set", "notifications.sinks[0].urlKey=ops-url",
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    board = by[("ConfigMap", "r-ramp-grafana-dashboard")]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["ramp.json"]) == json.loads(DASHBOARD.read_text())
    sinks = yaml.safe_load(by[("ConfigMap", "r-ramp-notifications")]["data"]["notifications.yaml"])
    assert sinks["sinks"] == [{"name": "ops", "urlKey": "ops-url"}]
    role = by[("Role", "r-ramp-notifications")]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["r-ramp-notifications"],
            "verbs": ["get"],
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["r-ramp-notifications"],
            "verbs": ["get"],
        },
    ]
    args = by[("Deployment", "r-ramp")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--notify-config=ops/r-ramp-notifications" in args
    assert "--notify-allow=https://hooks.example/services" in args
    plain = cluster.helm("template", "r", str(REPO / "charts" / "ramp")).stdout
    assert "grafana_dashboard" not in plain and "notify" not in plain  # off by default
