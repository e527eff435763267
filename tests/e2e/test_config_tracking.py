"""Tracked configuration on the real cluster: a change of a referenced ConfigMap's data is
a canary like any other, each revision's pods read an immutable copy made for it, an abort
keeps the stable on its copy, copies go with the history, and a Secret's value is nowhere
but in Secrets.

The story: ``web`` (trackConfig) reads the ConfigMap ``settings`` (envFrom) and the Secret
``db`` (a volume). Editing ``settings`` starts a canary that holds at its pause with the
canary's pods on the new copy and the stable's on the old one; an abort keeps the stable
on the old copy; a retry and a promote make the new copy the stable's; one more edit and
promotion prunes the oldest revision (revisionHistoryLimit 1) and with it its copies.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from ramp_e2e import OperatorProcess, Rollouts, condition, rollout_manifest, wait_for

SECRET_VALUE = "s3cr3t-" + secrets.token_hex(8)
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]


def tracked_manifest(name: str, config: str, secret: str | None) -> dict[str, Any]:
    manifest = rollout_manifest(name, replicas=2, steps=STEPS)
    manifest["spec"]["trackConfig"] = True
    manifest["spec"]["revisionHistoryLimit"] = 1
    pod = manifest["spec"]["template"]["spec"]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": config}}]
    if secret:
        pod["containers"][0]["volumeMounts"] = [{"name": "db", "mountPath": "/etc/db"}]
        pod["volumes"] = [{"name": "db", "secret": {"secretName": secret}}]
    return manifest


def pod_config(rollouts: Rollouts, revision: str) -> set[tuple[str, str]]:
    """(ConfigMap, Secret) names the pods of ``revision`` read, from their specs."""
    pods = rollouts.core.list_namespaced_pod(
        rollouts.ns, label_selector=f"ramp.dev/revision={revision}"
    ).items
    return {
        (
            p.spec.containers[0].env_from[0].config_map_ref.name,
            p.spec.volumes[0].secret.secret_name if p.spec.volumes else "",
        )
        for p in pods
        if p.metadata.deletion_timestamp is None
    }


def copies(rollouts: Rollouts) -> dict[str, dict[str, Any]]:
    """The copies Ramp made in this namespace: name -> (kind, data, owners)."""
    out = {}
    selector = "ramp.dev/config-copy=true"
    core = rollouts.core
    for kind, items in (
        ("ConfigMap", core.list_namespaced_config_map(rollouts.ns, label_selector=selector).items),
        ("Secret", core.list_namespaced_secret(rollouts.ns, label_selector=selector).items),
    ):
        for item in items:
            out[item.metadata.name] = {
                "kind": kind,
                "data": item.data,
                "immutable": item.immutable,
                "owners": sorted(o.name for o in item.metadata.owner_references or []),
            }
    return out


def set_settings(rollouts: Rollouts, mode: str) -> None:
    rollouts.core.patch_namespaced_config_map("settings", rollouts.ns, {"data": {"MODE": mode}})


def test_a_configmap_change_rolls_out_as_a_canary_with_copies_per_revision(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    ns = rollouts.ns
    core = rollouts.core
    core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"MODE": "a"}})
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "db"}, "stringData": {"password": SECRET_VALUE}}
    )
    rollouts.create(tracked_manifest("web", "settings", "db"))
    first = rollouts.wait_healthy("web", 2, timeout=90)["stableRevision"]
    made = copies(rollouts)
    old_cm = next(n for n, c in made.items() if c["kind"] == "ConfigMap")
    old_secret = next(n for n, c in made.items() if c["kind"] == "Secret")
    assert old_cm.startswith("settings-") and old_secret.startswith("db-"), made
    assert made[old_cm]["data"] == {"MODE": "a"} and made[old_cm]["immutable"] is True
    assert made[old_secret]["immutable"] is True
    assert made[old_cm]["owners"] == [f"web-{first}"]  # its revision's ControllerRevision
    assert pod_config(rollouts, first) == {(old_cm, old_secret)}

    # A change of the ConfigMap's data: a canary, through the steps, held at the pause.
    set_settings(rollouts, "b")
    held = rollouts.wait(
        "web",
        "the canary held at the pause",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
        timeout=60,
    )
    canary = held["canaryRevision"]
    assert held["stableRevision"] == first and canary != first
    new_cm = next(
        n for n, c in copies(rollouts).items() if c["kind"] == "ConfigMap" and n != old_cm
    )
    assert copies(rollouts)[new_cm]["data"] == {"MODE": "b"}
    wait_for(
        "the canary's pods",
        lambda: pod_config(rollouts, canary) == {(new_cm, old_secret)},
        timeout=30,
    )
    assert pod_config(rollouts, first) == {(old_cm, old_secret)}  # the stable keeps its copy
    assert copies(rollouts)[old_secret]["owners"] == sorted([f"web-{first}", f"web-{canary}"])

    # Abort: the stable stays on the old copy, the canary goes.
    rollouts.request("web", "abort")
    rollouts.wait_phase("web", "Aborted")
    wait_for("the canary drained", lambda: not pod_config(rollouts, canary), timeout=30)
    assert pod_config(rollouts, first) == {(old_cm, old_secret)}

    # Retry and promote: the new copy becomes the stable's.
    rollouts.request("web", "retry")
    rollouts.wait("web", "held again", lambda s: s.get("phase") == "Paused", timeout=60)
    rollouts.request("web", "promote")
    done = rollouts.wait_healthy("web", 2, timeout=60)
    assert done["stableRevision"] == canary
    wait_for(
        "the new stable's pods",
        lambda: (
            pod_config(rollouts, canary) == {(new_cm, old_secret)}
            and not pod_config(rollouts, first)
        ),
        timeout=30,
    )

    # One more change, promoted: the first revision leaves the history (limit 1), and
    # its ConfigMap copy with it (the Secret's copy stays: later revisions read it).
    set_settings(rollouts, "c")
    rollouts.wait(
        "web",
        "a third revision held",
        lambda s: s.get("phase") == "Paused" and s.get("canaryRevision") not in (None, canary),
        timeout=60,
    )
    rollouts.request("web", "promote")
    rollouts.wait(
        "web",
        "the third revision stable",
        lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") not in (first, canary),
        timeout=60,
    )

    def history() -> str:
        revisions = rollouts.apps.list_namespaced_controller_revision(
            rollouts.ns, label_selector="ramp.dev/rollout=web"
        ).items
        children = rollouts.apps.list_namespaced_deployment(rollouts.ns).items
        return (
            f"history {sorted(r.metadata.name for r in revisions)}; children "
            f"{sorted((d.metadata.name, d.status.replicas or 0) for d in children)}"
        )

    # Pruning follows the pass that sees the old stable's last pod gone; a missed wake
    # would leave it to the periodic resync (60 s +- 10 %): seen once in CI, hence 100 s
    # here and the history in the message (the latency is issue 26's to explain).
    wait_for(
        "the first revision's ConfigMap copy pruned",
        lambda: old_cm not in copies(rollouts),
        timeout=100,
        describe=history,
    )
    left = copies(rollouts)
    assert new_cm in left and old_secret in left, left
    wait_for(
        "the pruned revision gone from the Secret copy's owners",
        lambda: f"web-{first}" not in copies(rollouts)[old_secret]["owners"],
        timeout=60,
    )

    # The Secret's value: in no status, Event, operator log line or metric.
    everything = json.dumps(rollouts.get("web")) + json.dumps(rollouts.events("web"))
    assert SECRET_VALUE not in everything
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()  # as the API stores it
    assert SECRET_VALUE not in operator.log_text() and encoded not in operator.log_text()
    samples = [
        f"{s.name}{s.labels}{s.value}"
        for family in text_string_to_metric_families(operator.scrape())
        for s in family.samples
    ]
    assert not [s for s in samples if SECRET_VALUE in s]


def test_a_missing_referenced_object_is_an_invalid_spec_naming_it(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    ns = rollouts.ns
    rollouts.core.create_namespaced_config_map(
        ns, {"metadata": {"name": "here"}, "data": {"A": "1"}}
    )
    rollouts.create(tracked_manifest("odd", "here", None))
    stable = rollouts.wait_healthy("odd", 2, timeout=90)["stableRevision"]
    before = {r: d.spec.replicas for r, d in rollouts.deployments("odd").items()}

    # The template now references a ConfigMap that does not exist.
    obj = rollouts.get("odd")
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "gone"}}]
    rollouts.patch("odd", {"spec": {"template": {"spec": {"containers": [container]}}}})
    status = rollouts.wait_phase("odd", "Degraded")
    invalid = condition(status, "InvalidSpec")
    assert invalid["status"] == "True"
    assert (
        "ConfigMap gone" in invalid["message"] and "envFrom[0].configMapRef" in invalid["message"]
    )
    assert status["stableRevision"] == stable and not status.get("canaryRevision")
    after = {r: d.spec.replicas for r, d in rollouts.deployments("odd").items()}
    assert after == before  # nothing changed
