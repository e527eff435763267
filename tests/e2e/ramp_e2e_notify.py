"""Notification tests' shared setup: an HTTP sink on 127.0.0.1 and an operator of the test's
own that reads its notification config from a ConfigMap and a Secret (``ramp-notify``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ramp_e2e import OperatorProcess, wait_for

from cluster.fixtures import ClusterHandle

Post = tuple[float, str, dict[str, str], Any]


class Sink:
    """Records every POST: (monotonic time, path, headers, JSON body); answers 500 under
    ``/fail``, 204 elsewhere, after ``delay`` seconds (a slow sink)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[Post] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                time.sleep(delay)
                with sink.lock:
                    sink.requests.append((time.monotonic(), self.path, dict(self.headers), body))
                self.send_response(500 if self.path.startswith("/fail") else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self, prefix: str = "") -> list[Post]:
        with self.lock:
            return [r for r in self.requests if r[1].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()


def notifying_operator(
    cluster: ClusterHandle,
    namespace: str,
    config: str,
    secret: Mapping[str, str],
    sink: Sink,
    args: Sequence[str],
    log: str,
) -> OperatorProcess:
    """Create the ConfigMap ``ramp-notify`` (``notifications.yaml``: ``config``) and the
    Secret ``ramp-notify`` (``secret``) in ``namespace``, then start an operator that reads
    them and may notify ``sink`` (``args``: its other flags); returned once it watches."""
    cluster.kubectl(
        "create", "configmap", "ramp-notify", f"--from-literal=notifications.yaml={config}",
        namespace=namespace,
    )  # fmt: skip
    cluster.kubectl(
        "create", "secret", "generic", "ramp-notify",
        *(f"--from-literal={key}={value}" for key, value in secret.items()),
        namespace=namespace,
    )  # fmt: skip
    operator = OperatorProcess(
        cluster.kubeconfig,
        cluster.workdir / log,
        [
            *("--notify-config", f"{namespace}/ramp-notify", "--notify-allow", sink.url),
            *args,
        ],
    )
    operator.start()
    try:
        wait_for("the operator to start", lambda: "watching" in operator.log_text(), timeout=30)
    except BaseException:
        operator.stop()
        raise
    return operator
