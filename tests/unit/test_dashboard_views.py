"""The dashboard's views (pure) and its access guard (a real server on loopback)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import aiohttp

from ramp.cli.dashboard import pages, server, views
from ramp.cli.dashboard.server import Dashboard

ROLLOUT: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "replicas": 4,
        "strategy": {
            "canary": {
                "steps": [
                    {"setWeight": 25},
                    {"analysis": {"templates": [{"templateName": "errors"}]}},
                    {"pause": {}},
                ],
                "analysis": {
                    "metrics": [
                        {
                            "name": "latency",
                            "successCondition": "result < 0.3 && result > 0",
                            "prometheus": {"address": "http://p:9090", "query": "q"},
                        }
                    ]
                },
            }
        },
    },
    "status": {
        "phase": "Progressing",
        "stableRevision": "aaa",
        "canaryRevision": "bbb",
        "currentStepIndex": 1,
        "weights": {"desired": 25, "actual": 25},
        "readyReplicas": 4,
        "canaryReadyReplicas": 1,
        "stableReadyReplicas": 3,
        "measurements": [
            {
                "metric": "error-ratio",
                "verdict": "Pass",
                "time": "2026-01-01T00:00:02Z",
                "value": "0.001",
            },
            {
                "metric": "error-ratio",
                "verdict": "Fail",
                "time": "2026-01-01T00:00:03Z",
                "value": "0.2",
            },
            {
                "metric": "error-ratio",
                "verdict": "Inconclusive",
                "time": "2026-01-01T00:00:01Z",
                "value": "NaN",
            },
        ],
    },
}
TEMPLATE = {
    "metadata": {"name": "errors"},
    "spec": {
        "metrics": [
            {
                "name": "error-ratio",
                "successCondition": "result < 0.01",
                "failureCondition": "result >= 0.05",
            }
        ]
    },
}


def test_summary_row() -> None:
    row = views.summary(ROLLOUT)
    assert row["step"] == "2/3" and row["strategy"] == "canary"
    assert (row["desiredWeight"], row["actualWeight"], row["ready"]) == (25, 25, "4/4")


def test_metric_series_carry_thresholds_from_templates_and_inline() -> None:
    specs = views.metric_specs(ROLLOUT, [TEMPLATE])
    assert specs["error-ratio"]["success"] == [{"op": "<", "value": 0.01}]
    assert specs["error-ratio"]["failure"] == [{"op": ">=", "value": 0.05}]
    assert [t["value"] for t in specs["latency"]["success"]] == [0.3, 0.0]
    (series,) = views.measurement_series(ROLLOUT["status"]["measurements"], specs)
    assert [p["verdict"] for p in series["points"]] == ["Inconclusive", "Pass", "Fail"]
    assert [p["value"] for p in series["points"]] == [None, 0.001, 0.2]  # NaN: no point
    assert series["points"][0]["raw"] == "NaN"


def test_detail_marks_steps_and_keeps_measurements_beyond_the_status() -> None:
    seen: dict[str, Any] = {}
    views.merge_measurements(seen, ROLLOUT["status"]["measurements"])
    views.merge_measurements(seen, ROLLOUT["status"]["measurements"][:1])
    assert len(seen) == 3
    view = views.detail(ROLLOUT, [], [], [], [TEMPLATE], seen.values(), [])
    assert [s["state"] for s in view["steps"]] == ["done", "current", "pending"]
    html = pages.detail_page("shop", "web", view, "namespace shop", "csrf")
    assert 'aria-current="step">analysis errors</li>' in html
    assert 'data-verb="abort"' in html


def test_list_page_escapes_and_works_without_js() -> None:
    bad = {**ROLLOUT, "status": {**ROLLOUT["status"], "message": "<script>x</script>"}}
    html = pages.list_page(views.summaries([bad]), None, ["shop"], "ns", "c")
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert '<a href="/rollouts/shop/web">web</a>' in html


class _Nothing:
    """An API client that cannot reach anything (the guard needs no cluster)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("no cluster in a unit test")


def test_guard_token_cookie_host_and_csrf() -> None:
    async def scenario() -> dict[str, Any]:
        dash = Dashboard(_Nothing(), "shop", False, token="tok")
        runner = await dash.start(0)
        base = f"http://127.0.0.1:{dash.port}"
        out: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/api/rollouts") as r:
                    out["no_token"] = r.status
                async with s.get(f"{base}/", headers={"Host": f"evil.example:{dash.port}"}) as r:
                    out["bad_host"] = r.status
                async with s.get(f"{base}/static/app.js") as r:
                    out["static"] = r.status
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as s:
                async with s.get(f"{base}/?token=tok&namespace=shop", allow_redirects=False) as r:
                    out["login"] = (r.status, urllib.parse.urlsplit(r.headers["Location"]).query)
                    out["cookie"] = r.headers["Set-Cookie"]
                async with s.get(f"{base}/api/rollouts") as r:
                    out["with_cookie"] = r.status
                    out["csp"] = r.headers["Content-Security-Policy"]
                async with s.post(f"{base}/api/rollouts/shop/web/abort") as r:
                    out["no_csrf"] = r.status
                headers = {"X-Ramp-CSRF": dash.csrf, "Origin": "http://evil.example"}
                async with s.post(f"{base}/api/rollouts/shop/web/abort", headers=headers) as r:
                    out["cross_origin"] = r.status
        finally:
            dash.rollouts.stop()
            await runner.cleanup()
        return out

    out = asyncio.run(scenario())
    assert out["no_token"] == 401 and out["bad_host"] == 403 and out["static"] == 200
    assert out["login"] == (302, "namespace=shop")
    assert "HttpOnly" in out["cookie"] and "SameSite=Strict" in out["cookie"]
    assert out["with_cookie"] == 200 and "script-src 'self'" in out["csp"]
    assert out["no_csrf"] == 403 and out["cross_origin"] == 403


def test_list_stream_sends_events_pings_and_the_pages_escape_the_error(monkeypatch: Any) -> None:
    """The list's server-sent events (aiohttp-sse): a ``rollouts`` event with the watch's
    error, then pings while idle; the list page shows that error escaped."""
    monkeypatch.setattr(server, "HEARTBEAT_SECONDS", 0.2)

    async def scenario() -> tuple[str, str]:
        dash = Dashboard(_Nothing(), "shop", False, token="tok")
        runner = await dash.start(0)
        base = f"http://127.0.0.1:{dash.port}"
        try:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as s:
                async with s.get(f"{base}/?token=tok") as r:
                    page = await r.text()
                async with s.get(f"{base}/api/stream") as r:
                    assert r.headers["Content-Type"] == "text/event-stream"
                    seen = ""
                    while seen.count(": ping") < 2:
                        seen += (await asyncio.wait_for(r.content.readany(), 10)).decode()
        finally:
            dash.rollouts.stop()
            await runner.cleanup()
        return page, seen

    page, stream = asyncio.run(scenario())
    assert '<p class="error" role="alert">no cluster in a unit test</p>' in page
    event, data = stream.split("\r\n")[:2]
    assert event == "event: rollouts"
    assert json.loads(data.removeprefix("data: ")) == {
        "rollouts": [],
        "error": "no cluster in a unit test",
    }
    hostile = pages.list_page([], None, [], "ns", "c", error="<b>refused</b>")
    assert "<b>refused" not in hostile and "&lt;b&gt;refused&lt;/b&gt;" in hostile
    error = pages.error_page("shop", "<i>web</i>", "not found", "ns", "c")
    assert "<i>web" not in error and "shop/&lt;i&gt;web&lt;/i&gt;" in error


def test_the_browser_gets_the_token_from_a_private_file_not_its_command_line(
    monkeypatch: Any,
) -> None:
    """``--open``: the URL's token never goes on the browser's command line (``ps``)."""
    import os
    import stat
    import webbrowser
    from pathlib import Path

    from ramp.cli.dashboard import open_without_token_in_argv

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda target: opened.append(target))
    url = "http://127.0.0.1:3100/?token=s3cr3t-dashboard-token"
    page = open_without_token_in_argv(url)
    try:
        (target,) = opened
        assert "s3cr3t" not in target and target == page.as_uri()
        assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
        assert '"http://127.0.0.1:3100/?token=s3cr3t-dashboard-token"' in Path(page).read_text()
    finally:
        page.unlink()


def test_the_revision_history_shows_the_configuration_each_revision_reads() -> None:
    from ramp.core.config_tracking import CONFIG_ANNOTATION

    annotations = {CONFIG_ANNOTATION: '{"ConfigMap/settings":"settings-2222222222"}'}
    template = {"metadata": {"annotations": annotations}, "spec": {"containers": []}}
    child = {
        "metadata": {"name": "web-c0ffee", "labels": {"ramp.dev/revision": "c0ffee"}},
        "spec": {"replicas": 1, "template": template},
        "status": {"readyReplicas": 1},
    }
    plain = {
        "metadata": {"name": "web-5ab1e0", "labels": {"ramp.dev/revision": "5ab1e0"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
    }
    rows = {r["revision"]: r for r in views.revisions(ROLLOUT, [child, plain], [])}
    assert rows["c0ffee"]["config"] == "ConfigMap settings-2222222222"
    assert rows["5ab1e0"]["config"] == ""
    view = views.detail(ROLLOUT, [child, plain], [], [], [TEMPLATE], [], [])
    html = pages.detail_page("shop", "web", view, "namespace shop", "csrf")
    assert "<td>ConfigMap settings-2222222222</td>" in html and "<td>-</td>" in html
