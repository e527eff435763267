"""A real local HTTP(S) server for the web and webhook checks' end-to-end tests.

Binds 127.0.0.1 only. Routes (``GET`` for web checks, ``POST`` for hooks):

* ``/web/ok`` ``{"ok": true}``, ``/web/bad`` ``{"ok": false}``, ``/web/503`` HTTP 503,
  ``/web/slow`` answers after ``SLOW`` seconds, ``/web/auth`` ``{"ok": true}`` only with
  ``Authorization: Bearer <AUTH>``;
* ``/hook/pass``, ``/hook/fail``, ``/hook/later`` (202), ``/hook/slow``: each first checks
  the ``X-Ramp-Signature`` HMAC with :data:`HOOK_KEY` (401 when it does not verify), then
  answers; every request is kept in ``received`` (idempotency key, event, signature valid).

:func:`make_ca` writes a test CA and a server certificate for 127.0.0.1 with ``openssl``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOOK_KEY = "hook-signing-key-for-tests"
AUTH = "web-header-secret"
SLOW = 5.0


@dataclass
class Received:
    path: str
    key: str
    event: dict[str, Any]
    valid: bool


@dataclass
class CheckServer:
    """One server (http, or https with ``cert``/``key``) on a free loopback port."""

    cert: Path | None = None
    key: Path | None = None
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.cert else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CheckServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any = None) -> None:
                body = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/web/ok":
                    self._send(200, {"ok": True, "rate": 0.001})
                elif path == "/web/bad":
                    self._send(200, {"ok": False, "rate": 0.3})
                elif path == "/web/503":
                    self._send(503, {"ok": True})
                elif path == "/web/slow":
                    time.sleep(SLOW)
                    self._send(200, {"ok": True})
                elif path == "/web/auth":
                    good = self.headers.get("Authorization") == f"Bearer {AUTH}"
                    self._send(200 if good else 403, {"ok": good})
                else:
                    self._send(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stamp = self.headers.get("X-Ramp-Timestamp") or ""
                mac = hmac.new(HOOK_KEY.encode(), stamp.encode() + b"." + body, hashlib.sha256)
                valid = hmac.compare_digest(
                    "sha256=" + mac.hexdigest(), self.headers.get("X-Ramp-Signature") or ""
                )
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {}
                path = self.path.split("?", 1)[0]
                key = self.headers.get("Idempotency-Key") or ""
                owner.received.append(Received(path, key, event, valid))
                if not valid:
                    self._send(401, {"error": "bad signature"})
                elif path == "/hook/pass":
                    self._send(200, {"verdict": "Pass", "message": "smoke suite green"})
                elif path == "/hook/fail":
                    self._send(200, {"verdict": "Fail", "message": "checkout returned 500"})
                elif path == "/hook/later":
                    self._send(202, {"verdict": "Pass"})
                elif path == "/hook/slow":
                    time.sleep(SLOW)
                    self._send(200, {"verdict": "Pass"})
                else:
                    self._send(404)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.cert), str(self.key))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")
    )
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
        str(ca), "-days", "2", "-subj", "/CN=ramp-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key
