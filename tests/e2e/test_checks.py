"""Web and webhook checks end to end, and a check Job cut off by its deadline (issue 24).

A real local HTTP(S) server (tests/e2e/checkserver.py, 127.0.0.1) answers the checks; the
operator (``python -m ramp``) allow-lists its addresses, trusts the test CA for one https
address and only the system store for the other. Every case is one Rollout whose canary
is gated by one check at step 0; the cases of a test run side by side in one namespace,
and each ends as it must: promoted (Pass), aborted (Fail), or paused with the reason
(Error: non-2xx, timeout, untrusted certificate, refused signature; Inconclusive: 202, a
Job past its deadline). Nothing but a Pass ever promotes.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkserver import AUTH, HOOK_KEY, CheckServer, make_ca
from ramp_e2e import OperatorProcess, Rollouts, condition, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle

pytestmark = pytest.mark.cluster

PROMOTED, ABORTED = "promoted", "aborted"
SMOKE = {"name": "smoke", "image": "ramp-test/smoke:1"}
ERROR, INCONCLUSIVE = "AnalysisError", "AnalysisInconclusive"


@dataclass
class Servers:
    plain: CheckServer
    trusted: CheckServer
    """https with a certificate of the test CA, which the operator trusts for it."""
    untrusted: CheckServer
    """The same certificate; the operator checks it against the system store only."""
    ca: Path


@pytest.fixture(scope="module")
def servers(cluster: ClusterHandle) -> Iterator[Servers]:
    ca, cert, key = make_ca(cluster.workdir / "checks-tls")
    found = Servers(
        CheckServer().start(),
        CheckServer(cert=cert, key=key).start(),
        CheckServer(cert=cert, key=key).start(),
        ca,
    )
    try:
        yield found
    finally:
        for server in (found.plain, found.trusted, found.untrusted):
            server.stop()


@pytest.fixture(scope="module")
def check_operator(
    cluster: ClusterHandle, crds: None, servers: Servers
) -> Iterator[OperatorProcess]:
    """The operator for ``ck-*`` namespaces: the plain and the untrusted https server on
    the allow-list (system trust store), the trusted one as a provider with the test CA."""
    providers = [{"address": servers.trusted.url, "caFile": str(servers.ca)}]
    allow = [servers.plain.url, servers.untrusted.url]
    proc = OperatorProcess(
        cluster.kubeconfig,
        cluster.workdir / "operator-checks.log",
        ["--namespace", "ck-*", *(a for url in allow for a in ("--prometheus-allow", url))],
        env={"RAMP_PROMETHEUS_PROVIDERS": json.dumps(providers)},
    )
    proc.start()
    wait_for("the operator to start", lambda: "watching" in proc.log_text(), timeout=60)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def checks(
    cluster: ClusterHandle, check_operator: OperatorProcess, request: pytest.FixtureRequest
) -> Iterator[Rollouts]:
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    base = request.node.name.removeprefix("test_")[:20].replace("_", "-").strip("-")
    name = f"ck-{base}-{secrets.token_hex(2)}"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        "the default ServiceAccount",
        lambda: core.list_namespaced_service_account(name).items,
        timeout=30,
    )
    for secret, key, value in (
        ("hook", "key", HOOK_KEY),
        ("wrong-hook", "key", "not-the-key"),
        ("web-auth", "header", f"Bearer {AUTH}"),
    ):
        data = {key: base64.b64encode(value.encode()).decode()}
        core.create_namespaced_secret(name, {"metadata": {"name": secret}, "data": data})
    try:
        yield Rollouts(cluster.client, name)
    finally:
        if request.session.testsfailed == 0:
            core.delete_namespace(name, propagation_policy="Background")
        else:
            print(check_operator.tail(80))


def gated(name: str, metric: dict[str, Any]) -> dict[str, Any]:
    """A one-replica Rollout whose canary is judged by ``metric`` before its first weight."""
    steps = [{"analysis": {"metrics": [{"name": "check", **metric}]}}, {"setWeight": 100}]
    return rollout_manifest(name, replicas=1, steps=steps, deadline=120)


def outcome(status: dict[str, Any], stable: str | None) -> str | None:
    """How a case ended: promoted, aborted, the reason of a pause; None while running."""
    if status.get("stableRevision") not in (None, stable) and status.get("phase") == "Healthy":
        return PROMOTED
    if status.get("phase") == "Aborted":
        return ABORTED
    if status.get("phase") == "Paused":
        return str(condition(status, "Paused").get("reason"))
    return None


def expect_all(
    rollouts: Rollouts, cases: dict[str, tuple[dict[str, Any], str]], stables: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Wait until every case ended; assert each ended as expected, with a record."""
    ended: dict[str, dict[str, Any]] = {}

    def probe() -> bool:
        for name in cases:
            if name not in ended:
                status = rollouts.status(name)
                if outcome(status, stables[name]) is not None:
                    ended[name] = status
        return len(ended) == len(cases)

    wait_for(
        "every check to end",
        probe,
        timeout=120,
        interval=0.5,
        describe=lambda: str(
            {n: rollouts.status(n).get("message") for n in cases if n not in ended}
        ),
    )
    for name, (_, expected) in cases.items():
        status = ended[name]
        got = outcome(status, stables[name])
        records = status.get("measurements") or []
        assert got == expected, (name, got, status.get("message"), records)
        assert records, (name, "no measurement in the decision record")
        if expected != PROMOTED:
            assert all(m["verdict"] != "Pass" for m in records), (name, records)
            assert status["stableRevision"] == stables[name], name
    return ended


def test_web_checks_pass_fail_error_and_tls(checks: Rollouts, servers: Servers) -> None:
    def web(server: CheckServer, path: str, **extra: Any) -> dict[str, Any]:
        return {
            "successCondition": "result == 1.0",
            "consecutiveErrorLimit": 0,
            "web": {"url": f"{server.url}{path}", "jsonPath": "ok", "timeout": "1s", **extra},
        }

    cases = {
        "web-ok": (web(servers.plain, "/web/ok"), PROMOTED),
        "web-bad": (web(servers.plain, "/web/bad"), ABORTED),
        "web-503": (web(servers.plain, "/web/503"), ERROR),
        "web-slow": (web(servers.plain, "/web/slow"), ERROR),
        "web-tls-ca": (web(servers.trusted, "/web/ok"), PROMOTED),
        "web-tls-untrusted": (web(servers.untrusted, "/web/ok"), ERROR),
        "web-secret-header": (
            web(
                servers.plain,
                "/web/auth",
                headers=[
                    {
                        "name": "Authorization",
                        "valueFrom": {"secretKeyRef": {"name": "web-auth", "key": "header"}},
                    }
                ],
            ),
            PROMOTED,
        ),
        "web-not-allowed": (
            {**web(servers.plain, "/web/ok"), "web": {"url": "http://127.0.0.1:9/web/ok"}},
            "InvalidSpec",
        ),
    }
    stables = {n: "" for n in cases}
    for name, (metric, _) in cases.items():
        checks.create(gated(name, metric))
    for name in cases:
        stables[name] = checks.wait_healthy(name, 1, timeout=90)["stableRevision"]
    began = time.monotonic()
    for name in cases:
        checks.set_image(name, "ramp-test/app:v2")
    refused = cases.pop("web-not-allowed")
    ended = expect_all(checks, cases, stables)
    print(f"\nweb checks: {len(cases)} cases ended in {time.monotonic() - began:.1f}s")
    msg = {n: " ".join(m.get("message") or "" for m in s["measurements"]) for n, s in ended.items()}
    assert "503" in msg["web-503"]
    assert "timeout" in msg["web-slow"]
    assert (
        "CERTIFICATE_VERIFY_FAILED" in msg["web-tls-untrusted"]
        or "certificate" in msg["web-tls-untrusted"].lower()
    ), msg["web-tls-untrusted"]
    assert AUTH not in json.dumps(ended), "a Secret's value reached the status"
    # an address off the allow-list: refused before any request, the field named
    status = wait_for(
        "the refusal",
        lambda: (
            (s := checks.status("web-not-allowed")).get("message")
            and "web.url" in s["message"]
            and s
        ),
        timeout=60,
    )
    assert "not available" in status["message"], status["message"]
    assert status["stableRevision"] == stables["web-not-allowed"]
    del refused


def test_webhook_checks_pass_fail_later_signature_timeout(
    checks: Rollouts, servers: Servers
) -> None:
    def hook(path: str, secret: str = "hook") -> dict[str, Any]:
        return {
            "consecutiveErrorLimit": 0,
            "webhook": {
                "url": f"{servers.plain.url}{path}",
                "signingSecret": {"name": secret, "key": "key"},
                "timeout": "1s",
                "data": {"suite": "smoke-{{rollout}}"},
            },
        }

    cases = {
        "hook-pass": (hook("/hook/pass"), PROMOTED),
        "hook-fail": (hook("/hook/fail"), ABORTED),
        "hook-later": (hook("/hook/later"), INCONCLUSIVE),
        "hook-badsig": (hook("/hook/pass", secret="wrong-hook"), ERROR),
        "hook-slow": (hook("/hook/slow"), ERROR),
    }
    stables = {}
    for name, (metric, _) in cases.items():
        checks.create(gated(name, metric))
    for name in cases:
        stables[name] = checks.wait_healthy(name, 1, timeout=90)["stableRevision"]
    began = time.monotonic()
    for name in cases:
        checks.set_image(name, "ramp-test/app:v2")
    ended = expect_all(checks, cases, stables)
    print(f"\nwebhook checks: {len(cases)} cases ended in {time.monotonic() - began:.1f}s")
    mine = [
        r
        for r in servers.plain.received
        if r.event.get("source", "").startswith(f"/namespaces/{checks.ns}/")
    ]
    by_rollout: dict[str, list[Any]] = {}
    for r in mine:
        by_rollout.setdefault(r.event["data"]["rollout"], []).append(r)
    assert all(r.valid for r in by_rollout["hook-pass"]), "the operator's signature verifies"
    assert not any(r.valid for r in by_rollout["hook-badsig"]), "a wrong key is refused"
    event = by_rollout["hook-pass"][0].event
    assert event["specversion"] == "1.0" and event["type"] == "dev.ramp.check"
    assert event["data"]["suite"] == "smoke-hook-pass"
    assert event["data"]["canaryRevision"] == ended["hook-pass"]["stableRevision"]
    assert by_rollout["hook-pass"][0].key == event["id"] and len(event["id"]) == 32
    later = " ".join(m["message"] for m in ended["hook-later"]["measurements"])
    assert "202" in later
    assert "401" in " ".join(m["message"] for m in ended["hook-badsig"]["measurements"])
    assert HOOK_KEY not in json.dumps(ended)


def test_check_jobs_complete_pass_and_past_their_deadline_are_inconclusive(
    checks: Rollouts, cluster: ClusterHandle
) -> None:
    """kwok completes a Job's pod with exit 0 (its pod-complete stage): Pass. A pod that
    runs forever (kwok's ``never-ready`` fault) is stopped by the Job's deadline, and that
    is Inconclusive, never a pass. Real exits and image errors: tests/e2e/realnode."""
    from kubernetes import client

    def job(labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "inconclusiveLimit": 0,
            "job": {
                "activeDeadlineSeconds": 3,
                "template": {
                    "metadata": {"labels": labels or {}},
                    "spec": {"containers": [{"name": "smoke", "image": "ramp-test/smoke:1"}]},
                },
            },
        }

    cases = {
        "job-pass": (job(), PROMOTED),
        "job-deadline": (job({"ramp.dev/test-fault": "never-ready"}), INCONCLUSIVE),
    }
    stables = {}
    for name, (metric, _) in cases.items():
        checks.create(gated(name, metric))
    for name in cases:
        stables[name] = checks.wait_healthy(name, 1, timeout=90)["stableRevision"]
    for name in cases:
        checks.set_image(name, "ramp-test/app:v2")
    ended = expect_all(checks, cases, stables)
    record = ended["job-deadline"]["measurements"][-1]
    assert "deadline" in record["message"], record
    assert "completed" in ended["job-pass"]["measurements"][-1]["message"]
    jobs = client.BatchV1Api(cluster.client).list_namespaced_job(checks.ns).items
    by_owner = {j.metadata.owner_references[0].name: j for j in jobs}
    assert len(jobs) == 2 and set(by_owner) == set(cases), [j.metadata.name for j in jobs]
    found = by_owner["job-deadline"]
    assert found.spec.active_deadline_seconds == 3 and found.spec.backoff_limit == 0
    assert found.metadata.owner_references[0].kind == "Rollout"
    env = {e.name: e.value for e in found.spec.template.spec.containers[0].env}
    assert env["RAMP_CANARY_REVISION"] == ended["job-deadline"]["canaryRevision"]
    assert env["RAMP_STABLE_REVISION"] == stables["job-deadline"]


def test_bluegreen_smoke_job_before_the_switch_fails_on_blue_passes_to_green(
    checks: Rollouts, cluster: ClusterHandle
) -> None:
    """The brief's recipe: deploy green, test green, switch. A smoke Job in the
    pre-promotion analysis (kwok completes it, or its container exits 3): a failing one
    aborts and the active Service never leaves blue; a passing one switches."""
    from kubernetes import client
    from test_bluegreen import bg_manifest, services

    core = client.CoreV1Api(cluster.client)

    def smoke(fault: str | None) -> dict[str, Any]:
        labels = {"ramp.dev/test-fault": fault} if fault else {}
        return {
            "metrics": [
                {
                    "name": "smoke",
                    "job": {
                        "activeDeadlineSeconds": 30,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [SMOKE]},
                        },
                    },
                }
            ]
        }

    cases = {"bg-pass": None, "bg-fail": "exit-3"}
    for name, fault in cases.items():
        services(checks, name)
        checks.create(bg_manifest(name, replicas=2, prePromotionAnalysis=smoke(fault)))
    blue = {name: checks.wait_healthy(name, 2, timeout=90)["stableRevision"] for name in cases}
    for name in cases:
        checks.set_image(name, "ramp-test/app:v2")
    seen: dict[str, set[str | None]] = {name: set() for name in cases}

    def ended() -> bool:
        done = 0
        for name in cases:
            selector = core.read_namespaced_service(f"{name}-active", checks.ns).spec.selector
            seen[name].add((selector or {}).get("ramp.dev/revision"))
            status = checks.status(name)
            done += status.get("phase") == "Aborted" or (
                status.get("stableRevision") != blue[name] and status.get("phase") == "Healthy"
            )
        return done == len(cases)

    wait_for("both smoke tests to decide", ended, timeout=120, interval=0.2)
    failed = checks.status("bg-fail")
    assert failed["phase"] == "Aborted" and failed["abortReason"] == "AnalysisFailed", failed
    assert seen["bg-fail"] == {blue["bg-fail"]}, f"the active Service left blue: {seen['bg-fail']}"
    record = failed["measurements"][-1]
    assert record["verdict"] == "Fail" and record["value"] == "exit 3", record
    assert "exited with code 3" in record["message"] and "GET / answered 500" in record["message"]
    passed = checks.status("bg-pass")
    green = passed["stableRevision"]
    assert green != blue["bg-pass"] and passed["measurements"][-1]["verdict"] == "Pass"
    wait_for(
        "the active Service on green",
        lambda: (
            core.read_namespaced_service("bg-pass-active", checks.ns).spec.selector.get(
                "ramp.dev/revision"
            )
            == green
        ),
        timeout=30,
    )
    jobs = client.BatchV1Api(cluster.client).list_namespaced_job(checks.ns).items
    env = {
        e.name: e.value
        for j in jobs
        if j.metadata.owner_references[0].name == "bg-pass"
        for e in j.spec.template.spec.containers[0].env
    }
    assert env["RAMP_PREVIEW_SERVICE"] == "bg-pass-preview"
    assert env["RAMP_ACTIVE_SERVICE"] == "bg-pass-active"
