"""``kubectl ramp dashboard`` in a real browser (Debian's Chromium, driven by Selenium through
Debian's chromedriver) against the real cluster, the running operator and Prometheus.

* the list shows a Rollout progressing live (step changes appear without a reload);
* the detail page plots a real analysis's measurements with their thresholds;
* clicking abort aborts the real rollout;
* with an identity whose RBAC forbids patching Rollouts, a button shows the API's refusal.

Screenshots of both pages are saved under $RAMP_ARTIFACTS (default /tmp/ramp-artifacts; with
``RAMP_UPDATE_SCREENSHOTS=1``, under docs/images/ for the README).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ramp_e2e import REPO, Rollouts, rollout_manifest, wait_for
from test_analysis import error_metric, next_revision

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS_IMAGES = REPO / "docs" / "images"


class DashboardProcess:
    """``kubectl-ramp dashboard`` as a subprocess; ``url`` is what it printed."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path) -> None:
        self.log = log
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("kubectl-ramp")),
                "--kubeconfig",
                str(kubeconfig),
                "-n",
                namespace,
                "dashboard",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.startup_seconds = time.monotonic() - started
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
        assert found, f"no URL printed: {line!r}; log: {log.read_text()}"
        self.base, self.token = found.group(1), found.group(2)
        self.url = f"{self.base}/?token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian (no browser download), through chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run `make browser-install`", pytrace=False)
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium look for a driver of its own
    profile = tempfile.mkdtemp(prefix="ramp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def js(driver: Any, script: str) -> Any:
    return driver.execute_script(script)


def text(driver: Any, selector: str) -> str:
    """The visible text of the first match ('' when none): read in one script, so a row
    that the live update replaces in between is never a stale element."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';"
    return str(driver.execute_script(script, selector)).strip()


def text_attr(driver: Any, selector: str, name: str) -> str:
    script = (
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : '';"
    )
    return str(driver.execute_script(script, selector, name) or "")


def screenshot(driver: Any, name: str, height: int = 1600) -> Path:
    """Saved under $RAMP_ARTIFACTS (default /tmp/ramp-artifacts), kept after the run."""
    path = Path(os.environ.get("RAMP_ARTIFACTS", "/tmp/ramp-artifacts")) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, height)
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1600)
    if os.environ.get("RAMP_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / name)
    return path


def test_dashboard_live_list_plots_and_abort(
    cluster: ClusterHandle, rollouts: Rollouts, prom: PrometheusServer, browser: Any
) -> None:
    ns, name = rollouts.ns, "shop"
    steps = [
        {"setWeight": 25},
        {
            "analysis": {
                "metrics": [error_metric(prom.url, interval="1s", count=4, inconclusiveLimit=5)]
            }
        },
        {"setWeight": 50},
        {"pause": {}},
    ]
    rollouts.create(rollout_manifest(name, replicas=4, steps=steps))
    stable = rollouts.wait_healthy(name, 4)["stableRevision"]
    canary = next_revision(rollouts, name, "ramp-test/app:v2")
    prom.exporter.set_rate(ns, name, canary, rps=100, error_ratio=0.002)
    prom.exporter.set_rate(ns, name, stable, rps=100, error_ratio=0.002)

    dash = DashboardProcess(cluster.kubeconfig, ns, cluster.workdir / "dashboard.log")
    try:
        # The token in the URL becomes a cookie; without it nothing but a 401.
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{dash.base}/api/rollouts", timeout=5)
        assert denied.value.code == 401

        started = time.monotonic()
        browser.get(dash.url)
        row = f'tr[data-key="{ns}/{name}"]'
        wait_for("the list to show the Rollout", lambda: text(browser, f"{row} [data-col=phase]"))
        load_ms = js(
            browser,
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n.loadEventEnd - n.startTime;",
        )
        page_bytes = js(
            browser,
            "return [...performance.getEntriesByType('navigation'),"
            " ...performance.getEntriesByType('resource')]"
            ".reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);",
        )
        assert text(browser, f"{row} [data-col=phase]") == "Healthy"
        wait_for("the live stream", lambda: text(browser, "#live") == "live", timeout=10)
        js(browser, "window.__noReload = 'still here';")

        # The rollout progresses; the page follows without a reload.
        rollouts.set_image(name, "ramp-test/app:v2")
        wait_for(
            "step 2/4 (the analysis) to appear live",
            lambda: text(browser, f"{row} [data-col=step]") == "2/4",
            timeout=60,
            describe=lambda: text(browser, row),
        )
        assert js(browser, "return window.__noReload;") == "still here"
        assert text(browser, f"{row} [data-col=weight]") == "25% / 25%"
        wait_for(
            "the pause step (4/4) live",
            lambda: text(browser, f"{row} [data-col=step]") == "4/4",
            timeout=90,
            describe=lambda: text(browser, row),
        )
        assert js(browser, "return window.__noReload;") == "still here"
        list_seconds = time.monotonic() - started
        screenshot(browser, "dashboard-list.png", height=420)

        # The detail page: the analysis's measurements plotted against its thresholds.
        browser.find_element("link text", name).click()
        page = "return document.body.dataset.page"
        wait_for("the detail page", lambda: js(browser, page) == "detail")
        chart = '.metric-chart[data-metric="error-ratio"]'
        wait_for(
            "the error-ratio plot",
            lambda: int(text_attr(browser, chart, "data-points") or 0) >= 4,
            timeout=20,
        )
        element = browser.find_element("css selector", chart)
        assert element.get_attribute("data-thresholds") == "0.01,0.05"
        assert element.find_elements("css selector", "canvas"), "uPlot drew no canvas"
        legend = element.find_element("xpath", "..").text
        assert "success < 0.01" in legend and "failure >= 0.05" in legend
        verdicts = js(
            browser,
            "return [...document.querySelectorAll('.measurements tbody tr td:nth-child(3)')]"
            ".map(td => td.textContent);",
        )
        # The analysis passed (the rollout moved on); a measurement taken while
        # Prometheus' rate window was still filling on a loaded machine is Inconclusive.
        assert "Pass" in verdicts and set(verdicts) <= {"Pass", "Inconclusive"}, verdicts
        assert int(browser.find_element("id", "split-chart").get_attribute("data-points")) >= 2
        current = browser.find_element("css selector", "#steps li[aria-current=step]")
        assert current.text == "pause (until promoted)", current.text
        screenshot(browser, "dashboard-detail.png")

        # Abort by a click on the button: the real rollout aborts.
        button = browser.find_element("id", "verb-abort")
        button.click()
        wait_for(
            "the abort request to be written",
            lambda: "requested" in text(browser, "#action-result"),
            timeout=15,
            describe=lambda: text(browser, "#action-result"),
        )
        assert "ramp.dev/abort=" in text(browser, "#action-result")
        rollouts.wait_phase(name, "Aborted", timeout=30)
        wait_for("Aborted on the page", lambda: text(browser, "#phase") == "Aborted", timeout=15)
        assert rollouts.get(name)["metadata"]["annotations"]["ramp.dev/abort"]
        print(
            f"\ndashboard: start-up {dash.startup_seconds * 1000:.0f} ms, list page load "
            f"{load_ms:.0f} ms ({page_bytes / 1024:.0f} KiB with scripts and styles), "
            f"rollout followed live for {list_seconds:.1f}s"
        )
    finally:
        dash.stop()


VIEWER_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rollout-viewer}
rules:
  - apiGroups: [ramp.dev]
    resources: [rollouts, analysistemplates]
    verbs: [get, list, watch]
  - apiGroups: [apps]
    resources: [deployments, controllerrevisions]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [events]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rollout-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rollout-viewer}
subjects: [{kind: ServiceAccount, name: viewer}]
"""


def test_dashboard_shows_the_api_refusal_when_rbac_forbids(
    cluster: ClusterHandle, rollouts: Rollouts, browser: Any
) -> None:
    ns, name = rollouts.ns, "ro"
    rollouts.create(rollout_manifest(name, replicas=2, steps=[{"setWeight": 50}]))
    rollouts.wait_healthy(name, 2)
    cluster.kubectl("create", "serviceaccount", "viewer", namespace=ns)
    cluster.kubectl("apply", "-f", "-", input=VIEWER_ROLE, namespace=ns)
    token = cluster.kubectl("create", "token", "viewer", namespace=ns).stdout.strip()
    kubeconfig = cluster.kubeconfig_for_token(token, cluster.workdir / f"viewer-{ns}.yaml", ns)
    dash = DashboardProcess(kubeconfig, ns, cluster.workdir / "dashboard-viewer.log")
    try:
        browser.get(dash.url.replace("/?", f"/rollouts/{ns}/{name}?"))
        wait_for("the detail page", lambda: text(browser, "#phase") == "Healthy", timeout=15)
        wait_for("the live stream", lambda: text(browser, "#live") == "live", timeout=10)
        # From the keyboard this time: focus the button and press Space.
        from selenium.webdriver.common.keys import Keys

        browser.find_element("id", "verb-pause").send_keys(Keys.SPACE)
        wait_for(
            "the refusal",
            lambda: "Refused" in text(browser, "#action-result"),
            timeout=15,
            describe=lambda: text(browser, "#action-result"),
        )
        shown = text(browser, "#action-result")
        assert "(403)" in shown and "forbidden" in shown and "cannot patch" in shown, shown
        assert "system:serviceaccount:" + ns + ":viewer" in shown
        assert not rollouts.get(name)["spec"].get("paused")
    finally:
        dash.stop()
