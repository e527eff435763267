"""Events are posted without ``CoreV1Api`` (``ramp.shell.adapters.kube_client.EventsApi``):
the same requests as its two calls, against a real HTTP server, and the operator's
common path (a Kube, the checks wired, an Event posted) never builds ``CoreV1Api``,
whose classes cost about 20 MB of the operator's memory."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from ramp.shell.adapters.kube_client import EventsApi, discard


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, dict[str, Any], str]] = []
    status = 201

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        Recorder.seen.append(
            (
                self.command,
                self.path,
                self.headers.get("Content-Type", ""),
                body,
                self.headers.get("Authorization", ""),
            )
        )
        out = json.dumps({"metadata": {"resourceVersion": "7"}}).encode()
        self.send_response(Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Any:
    Recorder.seen, Recorder.status = [], 201
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_create_and_patch_send_what_core_v1_sends(server: int) -> None:
    config = client.Configuration(host=f"http://127.0.0.1:{server}")
    config.api_key = {"authorization": "tok"}
    config.api_key_prefix = {"authorization": "Bearer"}
    events = EventsApi(client.ApiClient(config))
    body = {"metadata": {"name": "web.1"}, "reason": "StepCompleted", "count": 1}
    discard(events.create_namespaced_event("ns", body, (5, 30), _preload_content=False))
    answer = events.patch_namespaced_event("web.1", "ns", {"count": 2}, _request_timeout=(5, 30))
    assert answer == {"metadata": {"resourceVersion": "7"}}
    assert Recorder.seen == [
        ("POST", "/api/v1/namespaces/ns/events", "application/json", body, "Bearer tok"),
        (
            "PATCH",
            "/api/v1/namespaces/ns/events/web.1",
            "application/strategic-merge-patch+json",
            {"count": 2},
            "Bearer tok",
        ),
    ]
    Recorder.status = 409  # the name exists: the poster picks a fresh one
    with pytest.raises(client.ApiException) as refused:
        events.create_namespaced_event("ns", body, _preload_content=False)
    assert refused.value.status == 409


def test_the_common_path_never_builds_core_v1() -> None:
    script = """
import sys
from kubernetes import client
from ramp.api.rollout import Rollout
from ramp.core.model import Event
from ramp.shell.runtime.leader import GuardedKube
from ramp.shell.runtime.run import wire_checks

kube = GuardedKube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")))
class Measurer: pass
wire_checks(Measurer(), kube)
rollout = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}}
try:  # nothing listens on port 9: the request is tried, then refused
    kube.poster.post(rollout, Event("Normal", "StepCompleted", "step 1"))
except Exception as exc:
    assert "/api/v1/namespaces/ns/events" in str(exc), exc
print("core_v1" if "kubernetes.client.api.core_v1_api" in sys.modules else "light")
kube.core
print("core_v1" if "kubernetes.client.api.core_v1_api" in sys.modules else "light")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["light", "core_v1"], out.stderr[-2000:]
