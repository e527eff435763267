"""Notifications a tenant cannot turn against the admin (issue 20).

* Slack: a Rollout's message is text; ``<!channel>``, ``<@U1>`` and disguised links
  (``<https://evil|docs>``) arrive as entities, so Slack shows them and acts on none.
* ``ramp.dev/notify: all`` reaches only the sinks of the Rollout's namespace: an ``optIn``
  sink must list the namespaces that may opt in, or it is refused.
* The allow-list compares normalised URLs (``/services/T0/../../admin`` is ``/admin``), the
  operator posts to the normalised URL, and it follows no redirect (a real loopback sink
  answering 307 is not followed).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from ramp.shell.adapters.notify.config import AllowList, Delivery, Settings, Sink, parse_settings
from ramp.shell.adapters.notify.messages import notification, payload, wants
from ramp.shell.adapters.notify.notifier import Notifier

NOW = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
HOSTILE = (
    "<!channel> <!here> <@U024BE7LH> <https://evil.example/login|https://docs.example> "
    "&lt;!everyone&gt; *bold*"
)


def rollout(namespace: str = "team-a", annotations: dict[str, str] | None = None) -> Any:
    return {
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "uid": "u-1",
            "annotations": annotations or {},
        },
        "spec": {},
        "status": {"phase": "Aborted"},
    }


def test_slack_payload_renders_mentions_and_links_inert() -> None:
    note = notification(rollout(), "Aborted", "Warning", f"aborted: {HOSTILE}", NOW)
    assert note is not None
    body, _ = payload(Sink("chat", "slack", "https://hooks.example/x"), note)
    text = body["text"]
    assert set(body) == {"text"}  # no link_names, no blocks: nothing else to interpret
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U024BE7LH&gt;" in text
    assert "&lt;https://evil.example/login|https://docs.example&gt;" in text
    assert "&amp;lt;!everyone&amp;gt;" in text  # an entity in the message stays text too
    assert text.startswith(":red_circle: Rollout *team-a/web* aborted: ")


def test_notify_all_does_not_reach_other_teams_opt_in_sinks() -> None:
    allow = AllowList.from_env_and_args(["https://hooks.example/services"], env={})
    secret = {"u": "https://hooks.example/services/T0/B0/x"}
    config = """
sinks:
  - {name: team-b-chat, type: slack, urlKey: u, optIn: true, namespaces: [team-b]}
  - {name: anyone, type: slack, urlKey: u, optIn: true}
"""
    settings = parse_settings(config, secret, allow)
    assert [s.name for s in settings.sinks] == ["team-b-chat"]
    (why,) = settings.refused
    assert "sink anyone" in why and "optIn needs namespaces" in why
    team_b_chat = settings.sinks[0]
    a_all = notification(rollout("team-a", {"ramp.dev/notify": "all"}), "Aborted", "W", "m", NOW)
    a_named = notification(
        rollout("team-a", {"ramp.dev/notify": "team-b-chat"}), "Aborted", "W", "m", NOW
    )
    b_all = notification(rollout("team-b", {"ramp.dev/notify": "all"}), "Aborted", "W", "m", NOW)
    assert a_all and a_named and b_all
    assert not wants(team_b_chat, a_all) and not wants(team_b_chat, a_named)
    assert wants(team_b_chat, b_all)
    # A sink built without the check (not from the configuration) is still never opted into.
    loose = Sink("loose", "slack", "https://hooks.example/services/x", opt_in=True)
    assert not wants(loose, a_all)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example/services/T0/B0/x", True),
        ("https://hooks.example/services/T0/../../admin", False),
        ("https://hooks.example/services/T0/%2e%2e/%2E%2E/admin", False),
        ("https://hooks.example/services/./T0/../B0", True),
        ("https://hooks.example/services%2f..%2fadmin", False),
        ("https://hooks.example/services/..%2fadmin", False),
        ("https://hooks.example/services\\..\\admin", False),
        ("https://hooks.example/services/../services/x", True),
        ("https://hooks.example/services/..", False),
        ("https://hooks.example/%73ervices/x", True),  # an escaped unreserved letter
    ],
    ids=lambda v: str(v),
)
def test_allow_list_compares_normalised_paths(url: str, allowed: bool) -> None:
    allow = AllowList.from_env_and_args(["https://hooks.example/services"], env={})
    assert (allow.refusal(url, "s") is None) is allowed, allow.refusal(url, "s")


def test_the_sink_posts_to_the_normalised_url() -> None:
    allow = AllowList.from_env_and_args(["https://hooks.example/services"], env={})
    secret = {"u": "HTTPS://Hooks.Example:443/services/T0/./B0/../B1?x=1#frag"}
    settings = parse_settings("sinks: [{name: s, urlKey: u}]", secret, allow)
    assert [s.url for s in settings.sinks] == ["https://hooks.example/services/T0/B1?x=1"]


def test_redirects_are_not_followed() -> None:
    """A sink on the allow-list answers 307 to a path that is not: nothing goes there."""

    async def scenario() -> tuple[list[str], float | None]:
        seen: list[str] = []

        async def hook(request: web.Request) -> web.Response:
            seen.append(request.path)
            raise web.HTTPTemporaryRedirect("/admin/steal")

        async def admin(request: web.Request) -> web.Response:
            seen.append(request.path)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hooks/x", hook)
        app.router.add_post("/admin/steal", admin)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        registry = CollectorRegistry()
        sink = Sink("s", "webhook", f"http://127.0.0.1:{port}/hooks/x")
        delivery = Delivery(max_attempts=2, initial_backoff=0.05, max_backoff=0.1, timeout=2)
        notifier = Notifier(Settings((sink,), (), delivery), registry)
        task = asyncio.create_task(notifier.run())
        await asyncio.sleep(0)
        notifier.publish(rollout(), "Aborted", "Warning", "m")
        for _ in range(100):
            if notifier.pending == 0:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
        labels = {"sink": "s", "trigger": "aborted", "outcome": "failed"}
        return seen, registry.get_sample_value("ramp_notifications_total", labels)

    seen, failed = asyncio.run(scenario())
    assert seen == ["/hooks/x"] and failed == 1
