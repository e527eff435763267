"""Tokens go only over https (issue 20): a real TLS server with a throw-away CA, and a
plain http one, both recording the headers they receive."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ramp.analysis.prometheus import PrometheusClient
from ramp.analysis.providers import Endpoint, ProviderConfig

ANSWER = b'{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}'
TOKEN = "tls-only-token-5e1f"


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> tuple[str, list[dict[str, str]], Any]:
    seen: list[dict[str, str]] = []
    handler = type("H", (_Handler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context else "http"
    return f"{scheme}://127.0.0.1:{server.server_port}", seen, server


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[str, str, list[dict[str, str]]]]:
    """An https server with a self-signed certificate for 127.0.0.1: (url, ca, seen)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    url, seen, server = _serve(context)
    yield url, str(cert), seen
    server.shutdown()


def _query(config: ProviderConfig, url: str) -> None:
    async def run() -> None:
        async with PrometheusClient(config) as provider:
            await provider.query(url, "up", 5, "team-a")

    asyncio.run(run())


def test_the_token_goes_over_https_and_never_over_http(
    tls: tuple[str, str, list[dict[str, str]]],
) -> None:
    https_url, ca, https_seen = tls
    http_url, http_seen, server = _serve(None)
    try:
        # A provider with its own token and CA.
        _query(ProviderConfig(providers=(Endpoint(https_url, token=TOKEN, ca_file=ca),)), https_url)
        assert https_seen[-1].get("Authorization") == f"Bearer {TOKEN}"
        # The legacy global token, both addresses on the allow-list: https only.
        legacy = ProviderConfig(allowed_addresses=(https_url, http_url), token=TOKEN, ca_file=ca)
        _query(legacy, https_url)
        _query(legacy, http_url)
        assert https_seen[-1].get("Authorization") == f"Bearer {TOKEN}"
        assert http_seen and all("Authorization" not in h for h in http_seen)
    finally:
        server.shutdown()


def test_an_untrusted_certificate_is_unreachable_not_trusted(
    tls: tuple[str, str, list[dict[str, str]]],
) -> None:
    https_url, _ca, seen = tls
    config = ProviderConfig(providers=(Endpoint(https_url, token=TOKEN),))  # system CAs only

    async def run() -> str:
        async with PrometheusClient(config) as provider:
            try:
                await provider.query(https_url, "up", 5, "team-a")
            except Exception as error:  # ProviderError
                return str(error)
        return "answered"

    assert "unreachable" in asyncio.run(run())
    assert not seen  # the token never left: the handshake failed first
