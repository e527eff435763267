"""Notifications shared fairly between tenants (issue 20, floods).

On f61a406 a condition alternating Pass and Error queued a notification on every flip;
the shared queue filled and another tenant's ``aborted`` notification was dropped. Now each
namespace has a quota, a share of the queue, and aborts have room of their own and go
first. The first test talks to a real HTTP sink on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from ramp.shell.adapters.notify import notifier as notifier_module
from ramp.shell.adapters.notify.config import Delivery, Settings, Sink
from ramp.shell.adapters.notify.notifier import Notifier

TRIGGERS = frozenset({"analysis", "aborted", "started"})


def rollout(namespace: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}"},
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}]}}},
        "status": {"phase": "Progressing", "canaryRevision": "bbb", "stableRevision": "aaa"},
    }


FLAPPER = rollout("team-a", "flapper")
VICTIM = rollout("team-b", "victim")


def flip(notifier: Notifier, i: int) -> None:
    verdict = "Pass" if i % 2 == 0 else "Error"
    notifier.publish(
        FLAPPER,
        f"Analysis{verdict}",
        "Normal",
        f"step-1 metric m: {verdict} (value 1): flapping",
    )


class SlowSink:
    """Answers 204 after ``delay`` seconds; records (namespace, trigger) in order."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.delay)
        self.received.append((body["rollout"]["namespace"], body["trigger"]))
        return web.Response(status=204)


def test_another_tenants_abort_is_delivered_through_a_flood() -> None:
    async def scenario() -> tuple[SlowSink, CollectorRegistry, float]:
        sink = SlowSink(delay=0.02)
        app = web.Application()
        app.router.add_post("/hook", sink.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        settings = Settings(
            (Sink("hooks", "webhook", f"http://127.0.0.1:{port}/hook", triggers=TRIGGERS),),
            (),
            Delivery(queue_size=50, timeout=2),
        )
        registry = CollectorRegistry()
        notifier = Notifier(settings, registry)
        task = asyncio.create_task(notifier.run())
        await asyncio.sleep(0)
        for i in range(600):  # ten minutes of a 1s metric flapping, at once
            flip(notifier, i)
        notifier.publish(VICTIM, "Aborted", "Warning", "rollout of bbb aborted: errors")
        published = time.monotonic()
        deadline = published + 15
        while ("team-b", "aborted") not in sink.received and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        took = time.monotonic() - published
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
        return sink, registry, took

    sink, registry, took = asyncio.run(scenario())
    assert ("team-b", "aborted") in sink.received, "the other tenant's abort was dropped"
    # Aborts go first: only what the workers already held was sent before it.
    assert sink.received.index(("team-b", "aborted")) <= notifier_module.WORKERS + 1
    assert took < 5, took
    flooded = sum(1 for ns, _ in sink.received if ns == "team-a")
    assert flooded <= 50 // 4, flooded  # a quarter of the queue at most
    value = registry.get_sample_value
    throttled = value(
        "ramp_notifications_total",
        {"sink": "hooks", "trigger": "analysis", "outcome": "throttled"},
    )
    dropped = value(
        "ramp_notifications_total",
        {"sink": "hooks", "trigger": "analysis", "outcome": "dropped"},
    )
    assert (throttled or 0) + (dropped or 0) >= 600 - notifier_module.NAMESPACE_BURST


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_flapping_metric_yields_a_bounded_number_of_notifications_per_minute() -> None:
    clock = Clock()

    async def scenario() -> list[int]:
        sink = Sink("hooks", "webhook", "http://127.0.0.1:9/hook", triggers=TRIGGERS)
        notifier = Notifier(Settings((sink,), (), Delivery()), clock=clock)
        notifier.loop = asyncio.get_running_loop()
        per_minute: list[int] = []
        for _minute in range(10):
            queued = 0
            for second in range(60):
                clock.now += 1
                flip(notifier, second)
                while not notifier.queue.empty():  # delivered at once
                    notifier._done(notifier.queue.get_nowait(), "delivered")
                    queued += 1
            per_minute.append(queued)
        return per_minute

    per_minute = asyncio.run(scenario())
    refill = notifier_module.NAMESPACE_REFILL
    assert per_minute[0] <= notifier_module.NAMESPACE_BURST + 60 / refill + 1, per_minute
    assert all(n <= 60 / refill + 1 for n in per_minute[1:]), per_minute
    assert sum(per_minute) < 600 / 4, per_minute


def test_one_namespace_holds_a_share_of_the_queue_and_aborts_have_room() -> None:
    async def scenario() -> Notifier:
        sink = Sink("hooks", "webhook", "http://127.0.0.1:9/hook", triggers=TRIGGERS)
        notifier = Notifier(Settings((sink,), (), Delivery(queue_size=8)))
        notifier.loop = asyncio.get_running_loop()  # no workers: nothing leaves the queue
        for i in range(10):
            flip(notifier, i)
            notifier.publish(rollout(f"team-{i}", "r"), "RolloutStarted", "Normal", "v2")
        for i in range(3):
            notifier.publish(rollout(f"other-{i}", "r"), "Aborted", "Warning", "aborted")
        return notifier

    notifier = asyncio.run(scenario())
    items = []
    while not notifier.queue.empty():
        items.append(notifier.queue.get_nowait())
    namespaces = [item.note.namespace for item in items]
    assert namespaces.count("team-a") == 1  # (8 - 2) // 4
    assert [item.note.trigger for item in items[:2]] == ["aborted", "aborted"]
    assert len(items) == 8
