"""``kubectl ramp get``, ``get --watch`` and ``status``: reading a Rollout, once or live."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from rich.console import RenderableType
from rich.live import Live

from ramp.cli.client import RolloutWatch
from ramp.cli.commands import Commands
from ramp.cli.facts import outcome, progress_line
from ramp.cli.output import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, fail
from ramp.cli.render import render, rollouts_table, to_text
from ramp.cli.safe import visible

WATCH_REDRAW_SECONDS = 5.0
"""Without a change, the live view is redrawn this often (for its ages; no API call)."""


def get(c: Commands) -> int:
    """``kubectl ramp get [NAME] [--watch]``."""
    a = c.args
    if a.name is None:
        if a.watch:
            fail("--watch needs a Rollout name: kubectl ramp get NAME --watch")
        items = c.kube.list_rollouts(a.all_namespaces)
        if a.output:
            c.out.data({"apiVersion": "v1", "kind": "List", "items": items}, a.output)
        elif not items:
            where = "any namespace" if a.all_namespaces else f"namespace {c.kube.namespace}"
            print(f"No rollouts found in {where}.", file=sys.stderr)
        else:
            c.out.show(rollouts_table(items, namespaces=a.all_namespaces))
        return EXIT_OK
    if a.watch:
        return watch(c, a.name, a.timeout)
    rollout = c.kube.get(a.name)
    if a.output:
        c.out.data(rollout, a.output)
        return EXIT_OK
    uid = rollout["metadata"].get("uid")
    c.out.show(
        render(
            rollout,
            c.kube.deployments(a.name),
            c.kube.events(a.name, uid),
            datetime.now(UTC),
        )
    )
    return EXIT_OK


def watch(c: Commands, name: str, timeout: float | None) -> int:
    """The live view: redrawn when a watch delivers a change."""
    # The first frame may come from another stream's list before the Rollout's own: it
    # shows the Rollout as read now, never "does not exist" (seen in CI under load).
    watcher = RolloutWatch(c.kube, name, rollout=c.kube.get(name)).start()
    deadline = None if timeout is None else time.monotonic() + timeout

    def frame() -> RenderableType:
        rollout, deployments, events = watcher.snapshot()
        if rollout is None:
            return f"rollout {name} does not exist (any more) in {c.kube.namespace}"
        view = render(
            rollout,
            deployments,
            events,
            datetime.now(UTC),
            compact=None if c.out.plain else c.out.console.width,
        )
        if watcher.error:
            return to_text(view) + f"\n(watch interrupted, reconnecting: {visible(watcher.error)})"
        return view

    def wait() -> bool | None:
        """Wait for a change: True when one came, False when not (the view's ages may
        be redrawn), None when the timeout is over."""
        left = WATCH_REDRAW_SECONDS
        if deadline is not None:
            left = min(left, deadline - time.monotonic())
            if left <= 0:
                return None
        changed = watcher.changed.wait(left)
        if changed:
            # Let a burst of events settle into one redraw (longer for printed frames).
            time.sleep(0.5 if c.out.plain else 0.05)
        watcher.changed.clear()
        return changed

    try:
        watcher.changed.wait(5)
        watcher.changed.clear()
        if c.out.plain:
            # A new frame only when something changed (not for ages alone).
            changed: bool | None = True
            while changed is not None:
                if changed:
                    stamp = datetime.now().strftime("%H:%M:%S")
                    sys.stdout.write(f"--- {stamp} ---\n{to_text(frame(), c.out.width)}")
                    sys.stdout.flush()
                changed = wait()
        else:
            with Live(frame(), console=c.out.console, auto_refresh=False, transient=False) as live:
                while wait() is not None:
                    live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    return EXIT_OK


def status(c: Commands) -> int:
    """Wait for the Rollout to settle: 0 Healthy, 1 Aborted/Degraded, 2 timeout."""
    name, timeout = c.args.name, c.args.timeout
    c.kube.get(name)
    watcher = RolloutWatch(c.kube, name, deployments=False, events=False).start()
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while True:
            watcher.changed.wait(min(5.0, max(deadline - time.monotonic(), 0)))
            watcher.changed.clear()
            rollout, _, _ = watcher.snapshot()
            if rollout is None:
                if time.monotonic() >= deadline:
                    c.out.line(f"timed out after {timeout:g}s: {c._ref(name)} not found")
                    return EXIT_TIMEOUT
                continue
            line = progress_line(rollout)
            if line != last:
                c.out.line(f"{datetime.now().strftime('%H:%M:%S')} {line}")
                last = line
            result = outcome(rollout)
            if result == "Healthy":
                return EXIT_OK
            if result is not None:
                return EXIT_FAILED
            if time.monotonic() >= deadline:
                c.out.line(
                    f"timed out after {timeout:g}s waiting for {c._ref(name)} to be "
                    f"Healthy (phase {(rollout.get('status') or {}).get('phase')})"
                )
                return EXIT_TIMEOUT
    except KeyboardInterrupt:
        return EXIT_TIMEOUT
    finally:
        watcher.stop()
