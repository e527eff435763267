"""Notifications from the running operator to HTTP sinks on 127.0.0.1, on the real cluster.

One operator of its own (``--notify-config``) watches a namespace of this test; the sinks
are a CloudEvents receiver that answers 204 and checks the bearer token, a webhook that
always answers 500 (retried with backoff, then reported), and a URL that is not on the
allow-list (refused at start-up with the reason, never contacted).
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle

TOKEN = "notify-e2e-bearer-" + secrets.token_hex(6)
STEPS = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]


class Sink:
    """Records every POST: (monotonic time, path, headers, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with sink.lock:
                    sink.requests.append((time.monotonic(), self.path, dict(self.headers), body))
                self.send_response(500 if self.path.startswith("/fail") else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, prefix: str) -> list[tuple[float, str, dict[str, str], Any]]:
        with self.lock:
            return [r for r in self.requests if r[1].startswith(prefix)]

    def events(self, rollout: str) -> list[dict[str, Any]]:
        return [r[3] for r in self.posts("/ok") if r[3]["data"]["rollout"]["name"] == rollout]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def config(sink: Sink) -> str:
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


def test_notifications_delivered_retried_refused_and_secret(
    cluster: ClusterHandle, crds: None, sink: Sink
) -> None:
    ns = f"notify-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", ns)
    try:
        run_notifications(cluster, sink, ns)
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def run_notifications(cluster: ClusterHandle, sink: Sink, ns: str) -> None:
    cluster.kubectl(
        "create", "configmap", "ramp-notify", f"--from-literal=notifications.yaml={config(sink)}",
        namespace=ns,
    )  # fmt: skip
    cluster.kubectl(
        "create", "secret", "generic", "ramp-notify",
        f"--from-literal=hooks-url={sink.url}/ok/hooks",
        f"--from-literal=hooks-token={TOKEN}",
        f"--from-literal=flaky-url={sink.url}/fail/flaky",
        "--from-literal=inside-url=https://kubernetes.default.svc/api/v1/secrets",
        namespace=ns,
    )  # fmt: skip
    operator = OperatorProcess(
        cluster.kubeconfig,
        cluster.workdir / f"operator-{ns}.log",
        ["--namespace", ns, "--notify-config", f"{ns}/ramp-notify", "--notify-allow", sink.url],
    )
    operator.start()
    try:
        wait_for("the operator to start", lambda: "watching" in operator.log_text(), timeout=30)
        log = operator.current_log()
        assert "sink inside" in log and "https://kubernetes.default.svc:443" in log
        assert "not on the notification allow-list" in log
        rollouts = Rollouts(cluster.client, ns)

        # Two Rollouts side by side: "loud" notifies every sink (one of which fails),
        # "quiet" opts out; they must progress equally fast.
        quiet = rollout_manifest("quiet", replicas=4, steps=STEPS)
        quiet["metadata"]["annotations"] = {"ramp.dev/notify": "none"}
        rollouts.create(rollout_manifest("loud", replicas=4, steps=STEPS))
        rollouts.create(quiet)
        rollouts.wait_healthy("loud", 4)
        rollouts.wait_healthy("quiet", 4)
        start = time.monotonic()
        rollouts.set_image("loud", "ramp-test/app:v2")
        rollouts.set_image("quiet", "ramp-test/app:v2")
        done: dict[str, float] = {}

        def healthy_both() -> bool:
            for name in ("loud", "quiet"):
                status = rollouts.status(name)
                if (
                    name not in done
                    and status.get("phase") == "Healthy"
                    and not status.get("canaryRevision")
                    and status.get("observedGeneration")
                    == rollouts.get(name)["metadata"]["generation"]
                ):
                    done[name] = time.monotonic() - start
            return len(done) == 2

        wait_for("both rollouts to complete", healthy_both, timeout=60)
        canary = rollouts.status("loud")["stableRevision"]

        # An abort: the CloudEvents sink gets it at once; the failing webhook is retried.
        rollouts.set_image("loud", "ramp-test/app:v3")
        rollouts.wait("loud", "a canary", lambda s: bool(s.get("canaryRevision")), timeout=30)
        aborted_at = time.monotonic()
        rollouts.request("loud", "abort")
        rollouts.wait_phase("loud", "Aborted", timeout=30)

        def triggers() -> list[str]:
            return [e["data"]["trigger"] for e in sink.events("loud")]

        wait_for("the aborted notification", lambda: "aborted" in triggers(), timeout=15)
        assert triggers()[:2] == ["started", "completed"], triggers()
        assert sink.events("quiet") == []
        started, completed, aborted = (
            next(e for e in sink.events("loud") if e["data"]["trigger"] == t)
            for t in ("started", "completed", "aborted")
        )
        assert started["specversion"] == "1.0" and started["type"] == "dev.ramp.rollout.started"
        assert started["subject"] == f"{ns}/loud"
        assert started["source"] == f"/apis/ramp.dev/v1alpha1/namespaces/{ns}/rollouts/loud"
        assert started["data"]["reason"] == "RolloutStarted"
        assert canary in completed["data"]["message"]
        assert aborted["data"]["reason"] == "Aborted" and "aborted" in aborted["data"]["message"]
        assert aborted["data"]["rollout"]["uid"] == rollouts.get("loud")["metadata"]["uid"]
        for _, _, headers, _ in sink.posts("/ok"):
            assert headers["Authorization"] == f"Bearer {TOKEN}"
            assert headers["Content-Type"].startswith("application/cloudevents+json")
        hooks_latency = [
            t - aborted_at
            for t, path, _, body in sink.posts("/ok")
            if body["data"]["trigger"] == "aborted"
        ]

        # The failing sink: three attempts with growing gaps, then a Warning Event.
        wait_for("three attempts", lambda: len(sink.posts("/fail")) >= 3, timeout=20)
        times = [t for t, *_ in sink.posts("/fail")]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] >= 0.35 and gaps[1] >= 0.75, gaps
        failed = rollouts.wait_events("loud", "NotificationFailed", 1, timeout=15)
        assert "sink flaky failed after 3 attempt(s): HTTP 500" in failed[0][2]
        time.sleep(1)
        assert len(sink.posts("/fail")) == 3  # maxAttempts

        # Metrics say which sink fails; the quiet rollout was as fast as the loud one.
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
            f"abort request to CloudEvents delivery {hooks_latency[0] * 1000:.0f} ms"
        )
    finally:
        operator.stop()
