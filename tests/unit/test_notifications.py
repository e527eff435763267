"""Notifications: settings, payloads, filters, and delivery to a real HTTP sink on loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from ramp.shell.adapters.notify.config import (
    AllowList,
    ConfigError,
    Delivery,
    Settings,
    Sink,
    parse_settings,
)
from ramp.shell.adapters.notify.messages import analysis_of, notification, payload, wants
from ramp.shell.adapters.notify.notifier import Notifier

NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
ROLLOUT: dict[str, Any] = {
    "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1", "annotations": {}},
    "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
    "status": {
        "phase": "Progressing",
        "stableRevision": "aaa",
        "canaryRevision": "bbb",
        "currentStepIndex": 1,
        "weights": {"desired": 20, "actual": 20},
    },
}
CONFIG = """
sinks:
  - name: ops
    type: cloudevents
    urlKey: ops-url
    tokenKey: ops-token
  - name: chat
    type: slack
    urlKey: chat-url
    triggers: [aborted]
    optIn: true
    namespaces: [shop]
  - name: evil
    urlKey: evil-url
delivery: {maxAttempts: 3, initialBackoff: 0.05s, maxBackoff: 0.2s, timeout: 2s}
"""
SECRET = {
    "ops-url": "http://127.0.0.1:9999/hooks/ops",
    "ops-token": "s3cr3t-token",
    "chat-url": "https://chat.example/services/T0/B0/XYZ",
    "evil-url": "http://10.0.0.1:8080/steal",
}


def test_settings_keep_allowed_sinks_and_say_why_others_are_off() -> None:
    allow = AllowList.from_env_and_args(
        ["http://127.0.0.1:9999/hooks", "https://chat.example/services"], env={}
    )
    settings = parse_settings(CONFIG, SECRET, allow)
    assert [s.name for s in settings.sinks] == ["ops", "chat"]
    assert settings.sinks[0].token == "s3cr3t-token"
    assert settings.delivery.max_attempts == 3
    (why,) = settings.refused
    assert "evil" in why and "http://10.0.0.1:8080" in why and "allow-list" in why
    assert "/steal" not in why  # the path of a URL may be a secret: never in a message
    assert "s3cr3t" not in repr(settings)


@pytest.mark.parametrize(
    ("entry", "url", "allowed"),
    [
        ("https://hooks.example/services", "https://hooks.example/services/T/B/x", True),
        ("https://hooks.example/services", "https://hooks.example/servicesX", False),
        ("https://hooks.example", "http://hooks.example/x", False),
        ("https://hooks.example", "https://hooks.example:8443/x", False),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", True),
        ("http://127.0.0.1:8080", "http://user:pw@127.0.0.1:8080/", False),
    ],
)
def test_allow_list_matches_origin_and_path_prefix(entry: str, url: str, allowed: bool) -> None:
    allow = AllowList.from_env_and_args([entry], env={})
    assert (allow.refusal(url, "s") is None) is allowed


def test_bad_config_raises_and_bad_sinks_are_refused() -> None:
    with pytest.raises(ConfigError):
        parse_settings("sinks: [", {}, AllowList())
    text = (
        "sinks: [{name: Bad_Name, urlKey: x}, {name: ok, urlKey: missing},"
        " {name: t, urlKey: u, triggers: [nope]}]"
    )
    settings = parse_settings(text, {"u": "http://127.0.0.1/"}, AllowList())
    assert settings.sinks == ()
    assert len(settings.refused) == 3


def test_abort_notification_carries_the_gate_that_failed() -> None:
    found = analysis_of("step-1 metric error-ratio: Fail (value 0.25): result >= 0.05 matched")
    assert found == {
        "run": "step-1",
        "metric": "error-ratio",
        "verdict": "Fail",
        "value": "0.25",
        "why": "result >= 0.05 matched",
    }
    note = notification(ROLLOUT, "Aborted", "Warning", "rollout of bbb aborted: x", NOW, found)
    assert note is not None
    data = note.data()
    assert data["trigger"] == "aborted"
    assert data["rollout"] == {"namespace": "shop", "name": "checkout", "uid": "u-1"}
    assert data["analysis"]["metric"] == "error-ratio" and data["canaryRevision"] == "bbb"
    assert notification(ROLLOUT, "StepCompleted", "Normal", "x", NOW) is not None
    assert notification(ROLLOUT, "SomethingElse", "Normal", "x", NOW) is None


def test_payloads_cloudevents_slack_webhook() -> None:
    note = notification(ROLLOUT, "RolloutCompleted", "Normal", "revision bbb promoted", NOW)
    assert note is not None
    ce, headers = payload(Sink("ops", "cloudevents", "http://x/", token="t"), note)
    assert headers["Content-Type"].startswith("application/cloudevents+json")
    assert headers["Authorization"] == "Bearer t"
    assert ce["specversion"] == "1.0" and ce["type"] == "dev.ramp.rollout.completed"
    assert ce["source"] == "/apis/ramp.dev/v1alpha1/namespaces/shop/rollouts/checkout"
    assert ce["data"]["message"] == "revision bbb promoted" and ce["id"]
    slack, _ = payload(Sink("chat", "slack", "http://x/"), note)
    assert set(slack) == {"text"} and "shop/checkout" in slack["text"]
    hook, headers = payload(Sink("h", "webhook", "http://x/"), note)
    assert hook["trigger"] == "completed" and "Authorization" not in headers


def test_annotations_choose_sinks_and_triggers() -> None:
    default = Sink("ops", "webhook", "u")
    opt_in = Sink("chat", "slack", "u", opt_in=True, namespaces=frozenset({"shop"}))

    def note(annotations: dict[str, str], reason: str = "Aborted") -> Any:
        obj = {**ROLLOUT, "metadata": {**ROLLOUT["metadata"], "annotations": annotations}}
        return notification(obj, reason, "Warning", "m", NOW)

    assert wants(default, note({})) and not wants(opt_in, note({}))
    assert not wants(default, note({"ramp.dev/notify": "off"}))
    assert wants(opt_in, note({"ramp.dev/notify": "chat"}))
    assert not wants(default, note({"ramp.dev/notify": "chat"}))
    assert wants(opt_in, note({"ramp.dev/notify": "all"}))
    only = {"ramp.dev/notify-triggers": "completed"}
    assert not wants(default, note(only)) and wants(default, note(only, "RolloutCompleted"))
    assert not wants(Sink("ns", "webhook", "u", namespaces=frozenset({"other"})), note({}))
    assert not wants(default, note({}, "StepCompleted"))  # not a default trigger


class Sink500:
    """A loopback HTTP sink: answers 500 to the first ``fail`` requests, then 204."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.requests: list[tuple[float, dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((time.monotonic(), dict(request.headers), await request.json()))
        if len(self.requests) <= self.fail:
            return web.Response(status=500)
        return web.Response(status=204)


async def _serve(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/hooks/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    return runner, int(server.sockets[0].getsockname()[1])


def test_delivery_retries_with_backoff_and_reports_a_failing_sink(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ramp.notify")

    async def scenario() -> tuple[Sink500, Sink500, list[str], CollectorRegistry, int]:
        flaky, dead = Sink500(fail=2), Sink500(fail=100)
        r1, p1 = await _serve(flaky.handle)
        r2, p2 = await _serve(dead.handle)
        delivery = Delivery(max_attempts=3, initial_backoff=0.1, max_backoff=1, timeout=2)
        settings = Settings(
            (
                Sink("flaky", "webhook", f"http://127.0.0.1:{p1}/hooks/a", token="tok-123"),
                Sink("dead", "cloudevents", f"http://127.0.0.1:{p2}/hooks/b"),
            ),
            (),
            delivery,
        )
        registry = CollectorRegistry()
        reports: list[str] = []
        notifier = Notifier(settings, registry, report=lambda note, msg: reports.append(msg))
        task = asyncio.create_task(notifier.run())
        await asyncio.sleep(0)
        notifier.publish(ROLLOUT, "Aborted", "Warning", "rollout of bbb aborted: boom")
        # publish never waits for a sink: it returned before any sink was sent anything
        # (a count, not a clock: a loaded machine can stretch any call past a few ms).
        sent_during_publish = len(flaky.requests) + len(dead.requests)
        deadline = time.monotonic() + 30
        while notifier.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r1.cleanup()
        await r2.cleanup()
        return flaky, dead, reports, registry, sent_during_publish

    flaky, dead, reports, registry, sent_during_publish = asyncio.run(scenario())
    assert sent_during_publish == 0  # publish never waits for a sink
    assert len(flaky.requests) == 3 and len(dead.requests) == 3
    gaps = [b[0] - a[0] for a, b in zip(flaky.requests, flaky.requests[1:], strict=False)]
    assert gaps[0] >= 0.07 and gaps[1] >= 0.14, gaps  # exponential backoff (with jitter)
    assert flaky.requests[-1][1]["Authorization"] == "Bearer tok-123"
    assert flaky.requests[-1][2]["trigger"] == "aborted"
    value = registry.get_sample_value
    assert (
        value(
            "ramp_notifications_total",
            {"sink": "flaky", "trigger": "aborted", "outcome": "delivered"},
        )
        == 1
    )
    assert (
        value(
            "ramp_notifications_total", {"sink": "dead", "trigger": "aborted", "outcome": "failed"}
        )
        == 1
    )
    assert value("ramp_notification_sink_up", {"sink": "dead"}) == 0
    assert value("ramp_notification_retries_total", {"sink": "flaky"}) == 2
    assert reports == ["notification 'aborted' to sink dead failed after 3 attempt(s): HTTP 500"]
    assert "tok-123" not in caplog.text and "/hooks/" not in caplog.text


def test_a_full_queue_drops_and_counts() -> None:
    async def scenario() -> CollectorRegistry:
        registry = CollectorRegistry()
        sink = Sink("s", "webhook", "http://127.0.0.1:9/hooks/x")
        notifier = Notifier(Settings((sink,), (), Delivery(queue_size=2)), registry)
        notifier.loop = asyncio.get_running_loop()  # no workers: nothing is taken out
        for _ in range(5):
            notifier.publish(ROLLOUT, "Aborted", "Warning", "m")
        return registry

    registry = asyncio.run(scenario())
    labels = {"sink": "s", "trigger": "aborted", "outcome": "dropped"}
    assert registry.get_sample_value("ramp_notifications_total", labels) == 3
    assert registry.get_sample_value("ramp_notification_queue_length") == 2


def test_attach_notifies_events_and_a_phase_that_becomes_paused() -> None:
    """The notifier is one of the adapter's event sinks: the real ``Kube.emit`` and
    ``Kube.patch_status`` hand it what they post and write (only the API is stubbed)."""
    from kubernetes import client

    from ramp.core.plan import Event
    from ramp.shell.adapters.kube import Kube

    class FakeKube(Kube):
        def __init__(self) -> None:
            super().__init__(client.ApiClient())
            self.posted: list[str] = []
            self.poster.post = lambda rollout, event: self.posted.append(event.reason)  # type: ignore[method-assign]
            self.custom = type(
                "Custom",
                (),
                {"patch_namespaced_custom_object_status": lambda *a, **k: {"status": a[-1]}},
            )()

    async def scenario() -> list[Any]:
        kube = FakeKube()
        sink = Sink(
            "s", "webhook", "http://127.0.0.1:9/", triggers=frozenset({"paused", "started"})
        )
        notifier = Notifier(Settings((sink,), (), Delivery()))
        notifier.loop = asyncio.get_running_loop()
        notifier.attach(kube)
        kube.emit(ROLLOUT, Event("Normal", "RolloutStarted", "rolling out bbb"))
        kube.emit(ROLLOUT, Event("Normal", "Paused", "spec.paused is true"))  # seen as status
        paused = {
            **ROLLOUT["status"],
            "phase": "Paused",
            "message": "paused: analysis is inconclusive",
            "conditions": [{"type": "Paused", "status": "True", "reason": "AnalysisInconclusive"}],
        }
        body = {**ROLLOUT, "metadata": {**ROLLOUT["metadata"], "resourceVersion": "1"}}
        kube.patch_status(body, paused)
        kube.patch_status({**body, "status": paused}, paused)  # still paused: nothing new
        assert kube.posted == ["RolloutStarted", "Paused"]
        items = []
        while not notifier.queue.empty():
            items.append(notifier.queue.get_nowait().note)
        return items

    started, paused = asyncio.run(scenario())
    assert started.trigger == "started"
    assert paused.trigger == "paused" and paused.type == "Warning"
    assert paused.data()["why"] == "AnalysisInconclusive"
    assert paused.message == "paused: analysis is inconclusive"
