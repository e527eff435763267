"""pytest fixtures: a real Prometheus (Debian's package) scraping the test exporter.

``prometheus`` (session-scoped) starts ``prometheus`` on 127.0.0.1 at a free port with a
1 s scrape and evaluation interval, a temporary storage directory and the query log
enabled, scraping an :class:`~exporter.Exporter`. Tests set rates with
``prometheus.exporter.set_rate(...)``, wait for data with ``prometheus.wait_for(...)``,
read the queries the server received with ``prometheus.query_log()``, and simulate an
outage with ``prometheus.stop()`` / ``prometheus.start()`` (same port, same data).

Nothing is skipped: without a ``prometheus`` binary the fixture fails and says to run
``make prometheus-install``.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.waiting import wait_for
from prometheus.exporter import Exporter

Samples = list[tuple[dict[str, str], float]]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies (Linux), so that
    a killed test run leaves no Prometheus behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """A Prometheus process owned by the test session."""

    def __init__(self, binary: str, workdir: Path, exporter: Exporter) -> None:
        self.binary = binary
        self.workdir = workdir
        self.exporter = exporter
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "prometheus.yml"
        self.query_log_file = workdir / "query.log"
        self.log_file = workdir / "prometheus.log"
        self.storage = workdir / "data"
        self.storage.mkdir(exist_ok=True)
        self.config_file.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            f"  query_log_file: {self.query_log_file}\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            "    static_configs:\n"
            f"      - targets: ['{exporter.target}']\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (on the same port as before) and wait until it is ready."""
        if self.running:
            return
        log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        # Ready is not enough: the scrape loops start only after the first target update
        # (about 5 s after start), and a rate() needs two samples. Wait until this
        # process has scraped the exporter twice; before that, a test right after a
        # restart would see old data age out of its windows and get no data.
        deadline = time.monotonic() + timeout
        first_scrape: str | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited at start:\n{self.log_tail()}")
            last = self._last_scrape()
            if last is not None:
                if first_scrape is None:
                    first_scrape = last
                elif last != first_scrape:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not scraping after {timeout}s:\n{self.log_tail()}")

    def _last_scrape(self) -> str | None:
        """When this process last scraped the exporter successfully (None: not yet)."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=1) as response:
                body: dict[str, Any] = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        for target in body.get("data", {}).get("activeTargets", []):
            if target.get("health") == "up":
                return str(target.get("lastScrape"))
        return None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait until the port is closed."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for failure messages."""
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def query(self, promql: str) -> Samples:
        """Run an instant query; the samples as (labels, value) pairs (a scalar has {})."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for(
        self, promql: str, predicate: Callable[[Samples], bool], timeout: float = 30.0
    ) -> Samples:
        """Poll ``promql`` until ``predicate(samples)`` holds; fail with the last answer."""
        last: list[Samples | str] = ["(no answer)"]

        def probe() -> tuple[Samples] | None:
            try:
                samples = self.query(promql)
            except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
                last[0] = f"error: {error}"
                return None
            last[0] = samples
            return (samples,) if predicate(samples) else None

        found = wait_for(repr(promql), probe, timeout, 0.25, describe=lambda: f"last: {last[0]}")
        return found[0]

    def query_log(self) -> list[str]:
        """The queries the server has received so far (from its query log), oldest first."""
        if not self.query_log_file.exists():
            return []
        queries = []
        for line in self.query_log_file.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            query = entry.get("params", {}).get("query")
            if isinstance(query, str):
                queries.append(query)
        return queries


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A running Prometheus scraping a fresh exporter, for the whole session."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "the prometheus binary is not installed: run `make prometheus-install` "
            "(tests/prometheus/install.sh installs Debian's prometheus package)",
            pytrace=False,
        )
    exporter = Exporter()
    server = PrometheusServer(binary, tmp_path_factory.mktemp("prometheus"), exporter)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        exporter.stop()


@pytest.fixture
def prom(prometheus: PrometheusServer) -> PrometheusServer:
    """The session's Prometheus, (re)started if an earlier test left it stopped."""
    prometheus.start()
    return prometheus
