"""``kubectl ramp`` on a blue-green Rollout, run as the installed command against the real
API server: the blue/green panel mid-release, a promote, an ``undo`` inside the rollback
window that flips the active Service back (read on the Service's selector), and an
``undo`` after the window that is refused with the reason."""

from __future__ import annotations

import subprocess
import time

import pytest
from kubernetes import client
from ramp_e2e import Rollouts, wait_for
from test_bluegreen import REV, bg_manifest, services
from test_cli import Ramp, ramp  # noqa: F401 (the fixture)

SHORT, WINDOW = 2, 25
"""scaleDownDelaySeconds of the first release (its window over at once) and of the second
(long enough for a ``get`` and an ``undo`` to land inside it on a loaded machine)."""


def active_selector(rollouts: Rollouts, name: str) -> str | None:
    core = client.CoreV1Api(rollouts.custom.api_client)
    svc = core.read_namespaced_service(f"{name}-active", rollouts.ns)
    return (svc.spec.selector or {}).get(REV)


def test_get_promote_and_undo_of_a_blue_green_rollout(
    rollouts: Rollouts,
    ramp: Ramp,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the views' lines unwrapped
    name = "bgcli"
    services(rollouts, name)
    rollouts.create(bg_manifest(name, autoPromotionEnabled=False, scaleDownDelaySeconds=SHORT))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    wait_for("active on blue", lambda: active_selector(rollouts, name) == blue, timeout=30)

    # Mid-release: green at its preview size, waiting for a promote.
    ramp.ok("set", "image", name, "app=ramp-test/app:v2")
    green = rollouts.wait_phase(name, "Paused", timeout=60)["canaryRevision"]
    wait_for(
        "green ready at its preview size",
        lambda: rollouts.ready_pods(name) == {blue: 4, green: 2},
        timeout=30,
    )
    view = ramp.ok("get", name, "--no-color")
    assert "Blue/green" in view and "Steps" not in view
    assert f"Active    {blue} (blue, 4/4 ready)" in view
    assert f"Preview   {green} (green, 2/2 ready) via Service {name}-preview" in view
    assert "Switch    not yet: waiting for promote" in view
    assert "(blue 4, green 2)" in view
    # No rollback mid-release: the reason, and nothing annotated.
    proc = ramp("undo", name)
    assert proc.returncode == 1 and "has not moved" in proc.stderr
    assert f"kubectl ramp abort {name}" in proc.stderr
    assert "ramp.dev/rollback" not in (rollouts.get(name)["metadata"].get("annotations") or {})

    # Promote: the switch; green is the active, stable revision. Once the (short) window
    # is over and blue is gone, undo is refused with the reason and nothing moves.
    ramp.ok("promote", name, "--wait")
    rollouts.wait(name, "green stable", lambda s: s.get("stableRevision") == green, timeout=60)
    # The status is the commit point (written first, guarded by its resourceVersion); the
    # Service's pin follows in the same reconcile, a moment later on a loaded machine.
    wait_for("active on green", lambda: active_selector(rollouts, name) == green, timeout=10)
    rollouts.wait(
        name,
        "blue no longer warm",
        lambda s: not (s.get("blueGreen") or {}).get("warmRevision"),
        timeout=SHORT + 30,
    )
    proc = ramp("undo", name)
    assert proc.returncode == 1
    assert "cannot roll back: no warm previous revision" in proc.stderr
    assert "ramp.dev/rollback" not in (rollouts.get(name)["metadata"].get("annotations") or {})
    assert active_selector(rollouts, name) == green
    assert "Rollback  no warm previous revision" in ramp.ok("get", name, "--no-color")

    # A second release with a longer window: get shows it, undo inside it flips back.
    rollouts.patch(name, {"spec": {"strategy": {"blueGreen": {"scaleDownDelaySeconds": WINDOW}}}})
    rollouts.set_image(name, "ramp-test/app:v3")
    third = rollouts.wait(
        name,
        "v3 waits for promote",
        lambda s: s.get("canaryRevision") not in (None, green) and s.get("phase") == "Paused",
        timeout=60,
    )["canaryRevision"]
    ramp.ok("promote", name)
    rollouts.wait(name, "v3 stable", lambda s: s.get("stableRevision") == third, timeout=60)
    wait_for("active on v3", lambda: active_selector(rollouts, name) == third, timeout=10)
    switched = time.monotonic()
    view = ramp.ok("get", name, "--no-color")
    assert f"{green} warm until" in view and f"kubectl ramp undo {name} flips back" in view

    # undo --wait, watched from here: when the token lands and when the Service flips.
    undo = subprocess.Popen(
        [*ramp.base, "undo", name, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    annotated = flipped = None
    before = time.monotonic()  # the last moment the token was seen absent
    deadline = before + 60
    while flipped is None and time.monotonic() < deadline:
        now = time.monotonic()
        notes = rollouts.get(name)["metadata"].get("annotations") or {}
        if annotated is None and "ramp.dev/rollback" in notes:
            annotated = now
        elif annotated is None:
            before = now
        if annotated is not None and active_selector(rollouts, name) == green:
            flipped = now
        time.sleep(0.05)
    out, err = (b.decode() for b in undo.communicate(timeout=60))
    print(f"$ kubectl ramp undo {name} --wait -> {undo.returncode}\n{out}{err}")
    assert undo.returncode == 0, err
    assert annotated is not None and flipped is not None, "no flip back seen"
    assert annotated - switched < WINDOW, "the undo came after the window"
    assert "rollback requested (ramp.dev/rollback=" in out and "flipped back" in out
    status = rollouts.status(name)
    assert status["stableRevision"] == green and status["abortReason"] == "UserRollback"
    assert status["blueGreen"]["activeRevision"] == green
    assert rollouts.wait_events(name, "RolledBack", 1)
    print(
        f"\nundo: the active Service back on the warm revision at most "
        f"{flipped - before:.2f}s after the rollback token was written "
        f"({annotated - switched:.1f}s into the window)"
    )
