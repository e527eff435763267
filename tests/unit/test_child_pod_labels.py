"""A child's pod-template labels survive the index's summary (a pin falls back to them
when the revision history no longer holds the revision's template)."""

from __future__ import annotations

from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_deployment


def test_pod_labels_are_observed_whole_and_through_the_summary() -> None:
    body = {
        "metadata": {"name": "web-a", "labels": {"ramp.dev/revision": "a"}},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "web", "track": "x"}}, "spec": {}},
        },
        "status": {},
    }
    whole = child_from_deployment(body)
    summarized = child_from_deployment(summarize_deployment(body))
    assert whole.pod_labels == summarized.pod_labels == (("app", "web"), ("track", "x"))
    assert child_from_deployment({"metadata": {}, "spec": {}}).pod_labels is None
