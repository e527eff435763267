"""``/metrics`` behind a bearer token: the decision (cached per token), the HTTP answers of
the real server on loopback, and the command line (issue 20). The reviews themselves are
the API server's: tests/e2e/test_metrics_auth.py runs them on the real cluster."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import pytest

from ramp.__main__ import parse_args
from ramp.shell.runtime.metrics import PROBES, MetricsServer, OperatorMetrics
from ramp.shell.runtime.metrics_auth import MetricsAuth, bearer_token
from ramp.shell.runtime.run import excluded


class Reviewer:
    """The API server's answers for three tokens (for MetricsAuth alone)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False

    def authenticate(self, token: str) -> dict[str, Any] | None:
        self.calls.append(f"authn {token}")
        if self.down:
            raise OSError("connection refused")
        users = {"prom": "system:serviceaccount:monitoring:prometheus", "dev": "dev"}
        return {"user": users[token], "groups": ["g"]} if token in users else None

    def authorize(self, user: dict[str, Any], path: str, verb: str = "get") -> bool:
        self.calls.append(f"authz {user['user']} {verb} {path}")
        return bool(user["user"].endswith(":prometheus") and path == "/metrics")


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer  t0k ") == "t0k" and bearer_token("bearer x") == "x"
    assert bearer_token("Bearer") is None and bearer_token("Token x") is None


def test_decisions_and_the_cache() -> None:
    now = [0.0]
    reviewer = Reviewer()
    auth = MetricsAuth(reviewer, ttl=10, clock=lambda: now[0])

    async def decide(header: str | None) -> tuple[int, str]:
        d = await auth.decide(header, "/metrics")
        return d.status, d.reason

    run = asyncio.run
    assert run(decide(None))[0] == 401 and not reviewer.calls  # no token: no review
    assert run(decide("Bearer nobody")) == (401, "the token is not valid")
    assert run(decide("Bearer dev")) == (403, 'user "dev" may not get /metrics')
    assert run(decide("Bearer prom"))[0] == 200
    calls = len(reviewer.calls)
    assert run(decide("Bearer prom"))[0] == 200 and run(decide("Bearer dev"))[0] == 403
    assert len(reviewer.calls) == calls  # cached, allowed and denied alike
    now[0] = 11
    reviewer.down = True
    assert run(decide("Bearer prom"))[0] == 503  # expired, and the API server is away
    reviewer.down = False
    assert run(decide("Bearer prom"))[0] == 200  # a failure is not cached
    assert "prom" not in str(list(auth._cache))  # tokens are kept as hashes only


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_servers_answer_by_port_and_token() -> None:
    async def scenario() -> dict[str, tuple[int, str]]:
        metrics = OperatorMetrics()
        secured = MetricsServer(
            metrics, "127.0.0.1", 0, paths=("/metrics",), auth=MetricsAuth(Reviewer())
        )
        probes = MetricsServer(metrics, "127.0.0.1", 0, paths=PROBES)
        m, p = await secured.start(), await probes.start()
        try:
            cases = {
                "none": (f"http://127.0.0.1:{m}/metrics", None),
                "bad": (f"http://127.0.0.1:{m}/metrics", "nobody"),
                "denied": (f"http://127.0.0.1:{m}/metrics", "dev"),
                "allowed": (f"http://127.0.0.1:{m}/metrics", "prom"),
                "healthz-on-metrics": (f"http://127.0.0.1:{m}/healthz", None),
                "healthz": (f"http://127.0.0.1:{p}/healthz", None),
                "readyz": (f"http://127.0.0.1:{p}/readyz", None),
                "metrics-on-probes": (f"http://127.0.0.1:{p}/metrics", None),
            }
            out = {}
            for name, (url, token) in cases.items():
                out[name] = await asyncio.to_thread(_get, url, token)
            return out
        finally:
            await secured.stop()
            await probes.stop()

    got = asyncio.run(scenario())
    assert got["none"][0] == 401 and got["bad"][0] == 401
    assert got["denied"] == (403, 'user "dev" may not get /metrics\n')
    assert got["allowed"][0] == 200 and "ramp_leader 1.0" in got["allowed"][1]
    for refused in ("none", "bad", "denied"):
        assert "ramp_" not in got[refused][1]
    assert got["healthz"][0] == 200 and got["readyz"][0] == 200
    assert got["healthz-on-metrics"][0] == 404 and got["metrics-on-probes"][0] == 404


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_args([])
    assert (args.metrics_auth, args.metrics_port, args.health_port) == ("kubernetes", 8080, 8081)
    assert args.health_bind_address == args.metrics_bind_address == "127.0.0.1"
    assert parse_args(["--metrics-auth=none"]).metrics_auth == "none"  # loopback: fine
    with pytest.raises(SystemExit):
        parse_args(["--metrics-auth=none", "--metrics-bind-address=0.0.0.0"])
    assert "only on a loopback address" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--metrics-port=9000", "--health-port=9000"])
    assert parse_args(["--metrics-port=0", "--health-port=0"]).health_port == 0


def test_excluded_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAMP_EXCLUDE_NAMESPACES", "ops, team-*")
    args = parse_args(["--exclude-namespace", "kube-*"])
    assert args.exclude_namespace == ["kube-*", "ops", "team-*"]
    skip = excluded(args.exclude_namespace)
    assert [skip(n) for n in ("kube-system", "ops", "team-b", "shop", "opsx")] == [
        True,
        True,
        True,
        False,
        False,
    ]
