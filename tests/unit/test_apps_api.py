"""A child Deployment and a ControllerRevision are written without ``AppsV1Api``
(``ramp.shell.adapters.kube_client.AppsApi``): each call sends what ``AppsV1Api``'s call
of the same name sends, against a real HTTP server, and the operator's common path (a
Kube built, its children written and listed) never builds ``AppsV1Api``, whose classes cost about
10 MB of the operator's memory; a read still goes to ``AppsV1Api``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from ramp.shell.adapters.kube_client import AppsApi, discard

DEPLOYMENT = {
    "metadata": {"name": "web-abc", "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        },
    },
}
REVISION = {"metadata": {"name": "web-abc"}, "revision": 1, "data": {"spec": {}}}
ANSWER = {
    **DEPLOYMENT,
    **REVISION,
    "metadata": {"name": "x", "resourceVersion": "7"},
    "items": [],
}
"""One answer every call's model can be read from (Deployment, ControllerRevision, Status,
their lists)."""


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, Any]] = []
    status = 200
    answer: dict[str, Any] = ANSWER

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        Recorder.seen.append(
            (
                self.command,
                self.path,
                self.headers.get("Content-Type", "") if raw else "",
                json.loads(raw) if raw else None,
            )
        )
        out = json.dumps(Recorder.answer).encode()
        self.send_response(Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PATCH = do_DELETE = do_GET = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_client() -> Any:
    Recorder.seen, Recorder.status, Recorder.answer = [], 200, ANSWER
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration(host=f"http://127.0.0.1:{httpd.server_address[1]}")
    config.api_key = {"authorization": "tok"}
    config.api_key_prefix = {"authorization": "Bearer"}
    yield client.ApiClient(config)
    httpd.shutdown()


CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    (
        "create Deployment",
        lambda a: a.create_namespaced_deployment(
            "ns", DEPLOYMENT, _request_timeout=(5, 30), _preload_content=False
        ),
    ),
    (
        "scale Deployment",
        lambda a: a.patch_namespaced_deployment(
            "web-abc", "ns", {"spec": {"replicas": 3}}, _preload_content=False
        ),
    ),
    (
        "patch Deployment, merge, field manager",
        lambda a: a.patch_namespaced_deployment(
            "web",
            "ns",
            {"spec": {"paused": True}},
            field_manager="ramp",
            _content_type="application/merge-patch+json",
            _request_timeout=(5, 30),
        ),
    ),
    (
        "JSON-patch Deployment",
        lambda a: a.patch_namespaced_deployment(
            "web", "ns", [{"op": "remove", "path": "/metadata/labels/x"}]
        ),
    ),
    ("delete Deployment", lambda a: a.delete_namespaced_deployment("web-abc", "ns")),
    (
        "list a Rollout's children",
        lambda a: a.list_namespaced_deployment(
            "ns", label_selector="ramp.dev/rollout=web", _request_timeout=(5, 30)
        ),
    ),
    (
        "list a Rollout's history",
        lambda a: a.list_namespaced_controller_revision("ns", label_selector="a=b"),
    ),
    (
        "create ControllerRevision",
        lambda a: a.create_namespaced_controller_revision("ns", REVISION, _preload_content=False),
    ),
    (
        "mark ControllerRevision",
        lambda a: a.patch_namespaced_controller_revision(
            "web-abc", "ns", {"metadata": {"annotations": {"a": "b"}}}, _preload_content=False
        ),
    ),
    (
        "delete ControllerRevision",
        lambda a: a.delete_namespaced_controller_revision(
            "web-abc", "ns", _request_timeout=(5, 30)
        ),
    ),
]


@pytest.mark.parametrize("what,call", CALLS, ids=[c[0] for c in CALLS])
def test_each_write_sends_what_apps_v1_sends(
    api_client: Any, what: str, call: Callable[[Any], Any]
) -> None:
    answer = call(AppsApi(api_client))
    if hasattr(answer, "release_conn"):
        discard(answer)
    elif not hasattr(answer, "items"):
        assert answer == ANSWER
    ours = Recorder.seen.pop()
    answer = call(client.AppsV1Api(api_client))
    if hasattr(answer, "release_conn"):
        discard(answer)
    assert ours == Recorder.seen.pop(), what


@pytest.mark.parametrize(
    "item,call",
    [
        (DEPLOYMENT, lambda a: a.list_namespaced_deployment("ns", label_selector="a")),
        (REVISION, lambda a: a.list_namespaced_controller_revision("ns", label_selector="a")),
    ],
)
def test_a_list_answers_what_the_models_serialize_to(
    api_client: Any, item: dict[str, Any], call: Callable[[Any], Any]
) -> None:
    Recorder.answer = {"metadata": {"resourceVersion": "9"}, "items": [item, item]}
    ours = call(AppsApi(api_client)).items
    theirs = call(client.AppsV1Api(api_client)).items
    assert ours == [api_client.sanitize_for_serialization(i) for i in theirs] == [item, item]
    Recorder.answer = {"metadata": {}, "items": None}
    assert call(AppsApi(api_client)).items == []


def test_a_refused_write_raises_the_api_exception(api_client: Any) -> None:
    Recorder.status = 409
    with pytest.raises(client.ApiException) as refused:
        AppsApi(api_client).create_namespaced_deployment("ns", DEPLOYMENT, _preload_content=False)
    assert refused.value.status == 409


def test_a_read_goes_to_apps_v1(api_client: Any) -> None:
    apps = AppsApi(api_client)
    dep = apps.read_namespaced_deployment("web", "ns")
    assert isinstance(dep, client.V1Deployment) and dep.metadata.name == "x"
    assert Recorder.seen[-1][:2] == ("GET", "/apis/apps/v1/namespaces/ns/deployments/web")
    with pytest.raises(AttributeError):
        apps.no_such_call  # noqa: B018


def test_the_common_path_never_builds_apps_v1() -> None:
    script = """
import sys
from kubernetes import client
from ramp.core.plan import Child
from ramp.shell.runtime.leader import GuardedKube

kube = GuardedKube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")))
rollout = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}},
}
child = Child(
    name="web-abc", revision="abc", role="canary", replicas=1, ready=1, current=1, settled=True
)
for write in (
    lambda: kube.create_child(rollout, "abc", {"spec": {"containers": []}}, 1, "canary"),
    lambda: kube.scale_child("ns", child, 2, None),
    lambda: kube.delete_child("ns", "web-abc"),
    lambda: kube.list_children("ns", "web"),
    lambda: kube.list_history("ns", "web"),
):
    try:  # nothing listens on port 9: the request is tried, then refused
        write()
    except Exception as exc:
        assert "/apis/apps/v1/namespaces/ns/" in str(exc), exc
print("apps_v1" if "kubernetes.client.api.apps_v1_api" in sys.modules else "light")
kube.apps.read_namespaced_deployment
print("apps_v1" if "kubernetes.client.api.apps_v1_api" in sys.modules else "light")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["light", "apps_v1"], out.stderr[-2000:]
