"""``kubectl ramp get NAME --watch``: the first frame shows the Rollout as read before the
watches start. Under load in CI another stream's list (the Deployments') set ``changed``
first, and the first frame said "rollout view does not exist (any more)" for a Rollout
that was there (tests/e2e/test_cli.py::test_get_lists_shows_and_watches)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ramp.cli.client import RolloutWatch


def _kube() -> Any:
    never = SimpleNamespace(list_namespaced_custom_object=lambda **_: None)
    return SimpleNamespace(namespace="shop", custom=never, apps=never, core=never)


def test_the_watch_starts_from_the_rollout_as_read() -> None:
    body = {"metadata": {"name": "view", "uid": "u1"}, "status": {"phase": "Paused"}}
    watcher = RolloutWatch(_kube(), "view", deployments=False, events=False, rollout=body)
    rollout, _, _ = watcher.snapshot()  # before any list of the watch came back
    assert rollout == body


def test_without_a_first_read_the_watch_knows_nothing_yet() -> None:
    watcher = RolloutWatch(_kube(), "view", deployments=False, events=False)
    assert watcher.snapshot()[0] is None
