"""Never unsafe, round 2 (issue 19, classes 4, 7, 8, 9): promotion and history on the real
local cluster, each with a background sampler of what a user sees.

The sampler (:func:`proven`) reads the pods and the Rollout every 0.2 s: a revision is
*proven* once one of its pods was ready running its own template (the image its
ControllerRevision records); the stable revision (and, for blue-green, the revision the
active Service selects) must always be one that was proven before. A history sampler
(:func:`marks_follow_status`) checks that no ControllerRevision says ``promoted-at`` of a
revision no accepted status made stable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from perturb import REVISION_LABEL, ROLLOUT_LABEL, history, owned, scale, watching
from ramp_e2e import Rollouts, condition, rollout_manifest, wait_for
from test_analysis import next_revision
from test_bluegreen import bg_manifest, services

from cluster.fixtures import ClusterHandle

FAULT = "ramp.dev/test-fault"


def _ready(pod: Any) -> bool:
    return not pod.metadata.deletion_timestamp and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def proven(rollouts: Rollouts, name: str, active_service: str | None = None) -> Callable[[], Any]:
    """A probe: the stable revision (and the one the active Service selects) ran a ready
    pod of its own template before. Judged from the pods, not from Ramp's status."""
    seen: set[str] = set()
    images: dict[str, str] = {}

    def image_of(revision: str) -> str | None:
        if revision not in images:
            entry = history(rollouts, name).get(revision)
            raw = (entry.metadata.annotations or {}).get("ramp.dev/template") if entry else None
            if raw:
                images[revision] = json.loads(raw)["spec"]["containers"][0]["image"]
        return images.get(revision)

    def probe() -> str | None:
        status = rollouts.status(name)
        pods = rollouts.core.list_namespaced_pod(rollouts.ns, label_selector=f"app={name}").items
        for pod in pods:
            revision = (pod.metadata.labels or {}).get(REVISION_LABEL, "")
            own = revision not in seen and _ready(pod)
            if own and pod.spec.containers[0].image == image_of(revision):
                seen.add(revision)
        stable = status.get("stableRevision")
        if not seen and stable:
            seen.add(stable)  # Healthy when the sampler starts: proven already
        judged = {"stable": stable}
        if active_service:
            svc = rollouts.core.read_namespaced_service(active_service, rollouts.ns)
            judged["active Service"] = (svc.spec.selector or {}).get(REVISION_LABEL)
        for what, revision in judged.items():
            if revision and revision not in seen:
                return f"{what} is {revision}, which never ran a ready pod (proven: {seen})"
        return None

    return probe


def marks_follow_status(rollouts: Rollouts, name: str) -> Callable[[], Any]:
    """A probe: every ControllerRevision marked ``promoted-at`` is a revision some status
    of the Rollout said was stable (the history never says more than the status)."""
    stables: set[str] = set()

    def probe() -> str | None:
        marked = [
            rev
            for rev, cr in history(rollouts, name).items()
            if (cr.metadata.annotations or {}).get("ramp.dev/promoted-at")
        ]
        stable = rollouts.status(name).get("stableRevision")
        if stable:
            stables.add(stable)
        wrong = [rev for rev in marked if rev not in stables]
        return f"history marks {wrong} promoted; statuses said {stables}" if wrong else None

    return probe


# -- class 4: replicas 0 -----------------------------------------------------------------


def test_at_zero_replicas_a_never_ready_template_is_never_promoted(rollouts: Rollouts) -> None:
    """f61a406: scaled to 0 (KEDA, an off-hours scaler), a template whose pods never get
    ready walked its steps and became stable; scaled back up, nothing was ready."""
    name = "zero"
    rollouts.create(
        rollout_manifest(
            name, replicas=2, steps=[{"setWeight": 50}, {"pause": {"duration": "2s"}}], deadline=8
        )
    )
    stable = rollouts.wait_healthy(name, 2)["stableRevision"]
    with watching("only proven revisions become stable", proven(rollouts, name)):
        scale(rollouts, name, 0)
        rollouts.wait(name, "scaled to 0", lambda s: s.get("replicas") == 0, timeout=30)
        rollouts.set_template_labels(name, {FAULT: "never-ready"})
        status = rollouts.wait(
            name,
            "holding at zero replicas",
            lambda s: condition(s, "Paused").get("reason") == "NoReplicas",
            timeout=30,
        )
        canary = status["canaryRevision"]
        time.sleep(4)  # longer than the steps: at f61a406 the canary was promoted by now
        assert rollouts.status(name)["stableRevision"] == stable
        scale(rollouts, name, 2)  # back: the canary never gets ready, the deadline aborts
        status = rollouts.wait_phase(name, "Aborted", timeout=60)
    assert status["stableRevision"] == stable and status["abortedRevision"] == canary
    wait_for("the stable serving 2", lambda: rollouts.ready_pods(name).get(stable) == 2)


def test_bluegreen_at_zero_replicas_never_switches_to_a_never_ready_green(
    rollouts: Rollouts,
) -> None:
    name = "bgzero"
    services(rollouts, name)
    manifest = bg_manifest(name, replicas=2, deadline=8)
    del manifest["spec"]["strategy"]["blueGreen"]["previewReplicaCount"]  # scaled to 0 below
    rollouts.create(manifest)
    blue = rollouts.wait_healthy(name, 2)["stableRevision"]
    with watching(
        "only proven revisions are stable or active", proven(rollouts, name, f"{name}-active")
    ):
        scale(rollouts, name, 0)
        rollouts.wait(name, "scaled to 0", lambda s: s.get("replicas") == 0, timeout=30)
        rollouts.set_template_labels(name, {FAULT: "never-ready"})
        rollouts.wait(
            name,
            "holding at zero replicas",
            lambda s: condition(s, "Paused").get("reason") == "NoReplicas",
            timeout=30,
        )
        time.sleep(3)
        assert rollouts.status(name)["stableRevision"] == blue
        scale(rollouts, name, 2)
        status = rollouts.wait_phase(name, "Aborted", timeout=60)
    assert status["stableRevision"] == blue


# -- class 7: a refused create consumes no verb --------------------------------------------


@contextmanager
def webhook_down(cluster: ClusterHandle, namespace: str) -> Iterator[None]:
    """An admission webhook for Deployment creates in ``namespace`` whose Service does not
    exist, with ``failurePolicy: Fail``: every create is refused with a 500."""
    admission = client.AdmissionregistrationV1Api(cluster.client)
    name = f"ramp-test-down-{namespace}"
    admission.create_validating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "down.ramp-test.dev",
                    "clientConfig": {
                        "service": {"namespace": namespace, "name": "nowhere", "path": "/"}
                    },
                    "rules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["deployments"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 2,
                }
            ],
        }
    )
    try:
        yield
    finally:
        admission.delete_validating_webhook_configuration(name)


def test_a_create_refused_by_a_webhook_that_is_down_consumes_no_promote(
    cluster: ClusterHandle, rollouts: Rollouts
) -> None:
    """f61a406: the canary's create refused (the webhook is down: 500) was taken for an
    invalid spec, which marked the promote as handled and ignored (PromoteIgnored): the
    rollout stayed paused after the webhook came back. Now the promote has its effect,
    the create is retried with backoff, and the rollout completes once it goes through."""
    name = "refused"
    rollouts.create(rollout_manifest(name, replicas=2, steps=[{"pause": {}}]))
    stable = rollouts.wait_healthy(name, 2)["stableRevision"]
    token = "p-during-outage"

    def unconsumed() -> str | None:
        """The token is either not handled yet or handled with its effect (Promoted)."""
        handled = (rollouts.status(name).get("handledTokens") or {}).get("promote")
        reasons = [e[1] for e in rollouts.events(name)]
        if "PromoteIgnored" in reasons or (handled == token and "Promoted" not in reasons):
            return f"the promote was consumed by a refusal: handled={handled}, {reasons}"
        return None

    with webhook_down(cluster, rollouts.ns):
        time.sleep(1)  # the API server's webhook configuration is watched, not read
        rollouts.set_image(name, "ramp-test/app:v2")
        rollouts.request(name, "promote", token)
        with watching("no verb is consumed by a refusal", unconsumed):
            refused = rollouts.wait_events(name, "CreateRefused", 2, timeout=30)
            assert "500" in refused[-1][2] and "retrying in" in refused[-1][2]
            time.sleep(2)
            status = rollouts.status(name)
            assert status["stableRevision"] == stable and status["phase"] == "Progressing"
    with watching("no verb is consumed by a refusal", unconsumed):
        status = rollouts.wait(
            name,
            "the canary promoted once created",
            lambda s: s.get("stableRevision") not in (None, stable) and s["phase"] == "Healthy",
            timeout=90,
        )
    assert status["handledTokens"]["promote"] == token


# -- class 8: the history never says more than the accepted status ------------------------


@contextmanager
def status_refusing_promotion(cluster: ClusterHandle, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy refusing every Rollout status update in ``namespace``
    that changes ``stableRevision``: the promotion's status patch is refused (as a
    conflict with an abort would make it fail) after whatever was written before it."""
    admission = client.AdmissionregistrationV1Api(cluster.client)
    name = f"ramp-test-no-promotion-{namespace}"
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["ramp.dev"],
                            "apiVersions": ["v1alpha1"],
                            "operations": ["UPDATE"],
                            "resources": ["rollouts/status"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                },
                "validations": [
                    {
                        "expression": "!has(oldObject.status) || !has(object.status) || "
                        "!has(oldObject.status.stableRevision) || "
                        "!has(object.status.stableRevision) || "
                        "object.status.stableRevision == oldObject.status.stableRevision",
                        "message": "test: no promotion",
                    }
                ],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        }
    )
    try:
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_a_promotion_whose_status_is_refused_leaves_no_promoted_mark(
    cluster: ClusterHandle, rollouts: Rollouts
) -> None:
    """f61a406: the promotion wrote ``promoted-at`` on the canary's ControllerRevision
    before its status patch; when that patch failed (a conflict with an abort, here a
    policy) and the abort won, the history said the aborted revision was the last
    promoted, and a lost status recovered it as stable."""
    name = "marks"
    rollouts.create(rollout_manifest(name, replicas=2, steps=[{"pause": {}}]))
    stable = rollouts.wait_healthy(name, 2)["stableRevision"]
    with (
        watching("history marks follow the status", marks_follow_status(rollouts, name)),
        watching("only proven revisions become stable", proven(rollouts, name)),
    ):
        rollouts.set_image(name, "ramp-test/app:v2")
        canary = rollouts.wait_phase(name, "Paused")["canaryRevision"]
        with status_refusing_promotion(cluster, rollouts.ns):
            time.sleep(1)
            rollouts.request(name, "promote")
            rollouts.wait_events(name, "StatusRefused", 1, timeout=30)
            time.sleep(2)  # several refused promotions
            assert not (history(rollouts, name)[canary].metadata.annotations or {}).get(
                "ramp.dev/promoted-at"
            )
            rollouts.request(name, "abort")  # the abort wins
            rollouts.wait_phase(name, "Aborted", timeout=30)
        # A status lost (restored from a backup): the stable comes back from the history.

        def wipe() -> bool:  # once the API server has dropped the policy
            try:
                rollouts.custom.patch_namespaced_custom_object_status(
                    "ramp.dev", "v1alpha1", rollouts.ns, "rollouts", name, {"status": None}
                )
            except ApiException as exc:
                if exc.status == 422:
                    return False
                raise
            return True

        wait_for("the status wiped", wipe, timeout=30)
        status = rollouts.wait(
            name,
            "recovered",
            lambda s: s.get("stableRevision") is not None and s.get("phase") == "Aborted",
            timeout=30,
        )
    assert status["stableRevision"] == stable and status["abortedRevision"] == canary


# -- class 9: a child whose template someone edited ----------------------------------------


def set_child_image(rollouts: Rollouts, deployment: str, image: str) -> None:
    """``kubectl set image deployment/<child> app=<image>``."""
    rollouts.apps.patch_namespaced_deployment(
        deployment,
        rollouts.ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


def not_healthy_while_edited(rollouts: Rollouts, name: str, edited: dict[str, float]) -> Any:
    """A probe: once a child's template was edited (and 5 s passed for the operator to
    see it), the Rollout is not Healthy until the edit is undone."""

    def probe() -> str | None:
        late = [d for d, at in edited.items() if time.monotonic() - at > 5]
        if late and rollouts.status(name).get("phase") == "Healthy":
            return f"Healthy while {late} run an edited template"
        return None

    return probe


def test_an_edited_stable_is_reported_and_an_edited_canary_never_promoted(
    rollouts: Rollouts,
) -> None:
    """f61a406: ``kubectl set image`` on the stable's Deployment kept the Rollout Healthy
    while the edited pods served; on the canary's, the edited pods passed the steps and
    the revision was promoted."""
    name = "drift"
    rollouts.create(
        rollout_manifest(name, replicas=2, steps=[{"setWeight": 50}, {"pause": {"duration": "2s"}}])
    )
    stable = rollouts.wait_healthy(name, 2)["stableRevision"]
    child = owned(rollouts, name)[stable].metadata.name
    edited: dict[str, float] = {}
    with (
        watching("not Healthy while edited", not_healthy_while_edited(rollouts, name, edited)),
        watching("only proven revisions become stable", proven(rollouts, name)),
    ):
        set_child_image(rollouts, child, "ramp-test/app:hotfix")
        edited[child] = time.monotonic()
        status = rollouts.wait_phase(name, "Degraded", timeout=30)
        assert condition(status, "TemplateDrift")["status"] == "True"
        assert child in condition(status, "TemplateDrift")["message"]
        rollouts.wait_events(name, "TemplateDrift", 1)
        set_child_image(rollouts, child, "ramp-test/app:v1")  # kubectl rollout undo
        edited.clear()
        rollouts.wait_healthy(name, 2, timeout=60)

        canary = next_revision(rollouts, name, "ramp-test/app:v2")
        rollouts.set_image(name, "ramp-test/app:v2")
        wait_for("the canary's Deployment", lambda: canary in owned(rollouts, name), timeout=30)
        set_child_image(rollouts, f"{name}-{canary}", "ramp-test/app:evil")
        edited[f"{name}-{canary}"] = time.monotonic()
        status = rollouts.wait(
            name,
            "holding on the edited canary",
            lambda s: condition(s, "Paused").get("reason") == "TemplateDrift",
            timeout=30,
        )
        time.sleep(4)  # longer than the steps: at f61a406 the edited canary was promoted
        assert rollouts.status(name)["stableRevision"] == stable
        set_child_image(rollouts, f"{name}-{canary}", "ramp-test/app:v2")
        edited.clear()
        status = rollouts.wait_healthy(name, 2, timeout=90)
    assert status["stableRevision"] == canary


def test_a_look_alike_named_like_the_next_revision_is_not_adopted(rollouts: Rollouts) -> None:
    """f61a406: an unowned Deployment named and labelled like the next revision was
    adopted whatever its template, and its pods became the canary (then the stable)."""
    name = "lookalike"
    rollouts.create(rollout_manifest(name, replicas=2, steps=[{"setWeight": 50}], deadline=8))
    stable = rollouts.wait_healthy(name, 2)["stableRevision"]
    template = rollouts.get(name)["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "ramp-test/app:v2"
    revision = next_revision(rollouts, name, "ramp-test/app:v2")
    evil = json.loads(json.dumps(template))
    evil["spec"]["containers"][0]["image"] = "ramp-test/app:evil"
    evil["metadata"]["labels"][REVISION_LABEL] = revision
    rollouts.apps.create_namespaced_deployment(
        rollouts.ns,
        {
            "metadata": {
                "name": f"{name}-{revision}",
                "labels": {ROLLOUT_LABEL: name, REVISION_LABEL: revision},
                "annotations": {"ramp.dev/template": json.dumps(template)},
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": name, REVISION_LABEL: revision}},
                "template": evil,
            },
        },
    )

    def never_adopted() -> str | None:
        try:
            d = rollouts.apps.read_namespaced_deployment(f"{name}-{revision}", rollouts.ns)
        except ApiException as exc:
            return None if exc.status == 404 else str(exc)
        return (
            f"the look-alike was adopted: {d.metadata.owner_references}"
            if (d.metadata.owner_references)
            else None
        )

    with (
        watching("the look-alike is never adopted", never_adopted),
        watching("only proven revisions become stable", proven(rollouts, name)),
    ):
        rollouts.set_image(name, "ramp-test/app:v2")
        status = rollouts.wait(
            name,
            "the look-alike reported",
            lambda s: condition(s, "ForeignChildren").get("status") == "True",
            timeout=30,
        )
        status = rollouts.wait_phase(name, "Aborted", timeout=60)  # never created: deadline
    assert status["stableRevision"] == stable
