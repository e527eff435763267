"""The Helm chart on the real cluster: it lints, every ci scenario renders and is accepted by
the API server, bad values are refused by name, and the operator running with the chart's
ServiceAccount and nothing more completes a canary and an abort — and can do no more than
that."""

from __future__ import annotations

import contextlib
import filecmp
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ramp_chart import (
    CHART,
    CI_VALUES,
    RESTRICTED,
    THIRD_PARTY_CRDS,
    can_i,
    container_args,
    helm_install,
    helm_uninstall,
    local_args,
    scratch_namespace,
    service_account_kubeconfig,
)
from ramp_e2e import REPO, OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle, KubectlError
from cluster.launcher import wait_established

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "1s"}},
    {"setWeight": 50},
    {"pause": {}},
]


# -- static: lint, schema ------------------------------------------------------------------


def test_chart_crds_are_the_generated_crds() -> None:
    """`make crds` writes both copies; Helm installs the chart's copy."""
    repo = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert repo == chart
    _, mismatch, errors = filecmp.cmpfiles(REPO / "crds", CHART / "crds", repo, shallow=False)
    assert not mismatch and not errors, f"run `make crds`: {mismatch or errors} differ"


def test_helm_lint_strict(cluster: ClusterHandle) -> None:
    cluster.helm("lint", "--strict", str(CHART))
    for values in CI_VALUES:
        cluster.helm("lint", "--strict", str(CHART), "-f", str(values))


def documented_keys() -> list[str]:
    """Keys of values.yaml that carry a ``# --`` description (helm-docs style)."""
    keys, stack, described = [], [], False
    for line in (CHART / "values.yaml").read_text().splitlines():
        if line.strip().startswith("# --"):
            described = True
            continue
        found = re.match(r"^(\s*)([A-Za-z]\w*):", line)
        if not found:
            continue
        indent = len(found.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, found.group(2)))
        if described:
            keys.append(".".join(k for _, k in stack))
            described = False
    return keys


def test_every_value_is_documented_and_in_the_schema() -> None:
    import json

    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    keys = documented_keys()
    assert len(keys) > 40
    missing = [k for k in keys if f"| `{k}` |" not in readme]
    assert not missing, f"not in the README's values reference: {missing}"
    for key in keys:
        node = schema
        for part in key.split("."):
            assert part in node.get("properties", {}), f"{key} is not in values.schema.json"
            node = node["properties"][part]
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
    assert schema.get("additionalProperties") is not False, "the root must stay open"


BAD_VALUES = [
    ("scope: everywhere\n", "/scope", "value must be one of 'cluster', 'namespace'"),
    ("replicaCount: two\n", "/replicaCount", "got string, want integer"),
    ("metrics:\n  prot: 9090\n", "/metrics", "additional properties 'prot' not allowed"),
    ("image:\n  pullPolicy: Sometimes\n", "/image/pullPolicy", "value must be one of"),
    ("leaderElection:\n  leaseDuration: 0\n", "/leaderElection/leaseDuration", "minimum"),
    ("logFormat: xml\n", "/logFormat", "value must be one of"),
    ("prometheus:\n  allow: [prometheus:9090]\n", "/prometheus/allow/0", "does not match"),
    (
        "replicaCount: 2\nleaderElection:\n  renewDeadline: 20\n",
        "leaderElection",
        "renewPeriod (5) < renewDeadline (20) < leaseDuration (15) is required",
    ),
    ("watchNamespaces: [team-a]\n", "watchNamespaces", "only used with scope: namespace"),
]


@pytest.mark.parametrize(
    ("values", "where", "message"),
    BAD_VALUES,
    ids=[
        "scope-enum",
        "replicas-type",
        "leaf-typo",
        "pull-policy",
        "lease-zero",
        "log-format",
        "allow-url",
        "lease-timings",
        "namespaces-in-cluster-scope",
    ],
)
def test_bad_values_are_rejected_naming_the_value(
    cluster: ClusterHandle, tmp_path: Path, values: str, where: str, message: str
) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(values)
    proc = cluster.helm("template", "r", str(CHART), "-f", str(bad), check=False)
    assert proc.returncode != 0, proc.stdout
    assert where in proc.stderr and message in proc.stderr, proc.stderr


def test_unknown_top_level_keys_are_allowed_for_use_as_a_subchart(cluster: ClusterHandle) -> None:
    cluster.helm("template", "r", str(CHART), "--set", "global.imageRegistry=x,someParent=1")


# -- server-side dry run of every ci scenario -------------------------------------------------


@pytest.fixture(scope="module")
def monitoring_crds(cluster: ClusterHandle) -> None:
    """prometheus-operator's real CRDs, so its objects are validated against their schemas."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(THIRD_PARTY_CRDS))
    wait_established(
        cluster.kubeconfig,
        ["servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"],
    )


@contextlib.contextmanager
def namespaces_named(cluster: ClusterHandle, names: list[str]) -> Iterator[None]:
    """Namespaces a ci file names literally; created for the test when absent."""
    created = []
    for name in names:
        exists = cluster.kubectl("get", "namespace", name, check=False).returncode == 0
        if not exists:
            cluster.kubectl("create", "namespace", name)
            created.append(name)
    try:
        yield
    finally:
        for name in created:
            cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_ci_scenario_renders_and_the_api_server_accepts_it(
    cluster: ClusterHandle, crds: None, monitoring_crds: None, values: Path
) -> None:
    named = yaml.safe_load(values.read_text()).get("watchNamespaces") or []
    with scratch_namespace(cluster, "dry", RESTRICTED) as ns, namespaces_named(cluster, named):
        rendered = cluster.helm(
            "template", "ramp", str(CHART), "--namespace", ns, "-f", str(values)
        ).stdout
        kinds = {o["kind"] for o in yaml.safe_load_all(rendered) if o}
        assert {"Deployment", "ServiceAccount"} <= kinds
        proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
        # The namespace enforces the restricted Pod Security profile: the API server warns
        # about a Deployment whose pods would be refused.
        assert "PodSecurity" not in proc.stderr, proc.stderr
        assert "Warning" not in proc.stderr, proc.stderr
        applied = [line for line in proc.stdout.splitlines() if "(server dry run)" in line]
        assert len(applied) == len([o for o in yaml.safe_load_all(rendered) if o]), proc.stdout


# -- installed: the chart's identity runs the operator ---------------------------------------


def wait_chart_pods_ready(rollouts: Rollouts, deployment: str, replicas: int) -> None:
    """The chart's own Deployment gets its pods (kwok runs them): the restricted Pod
    Security profile of the namespace admitted them."""

    def ready() -> bool:
        d = rollouts.apps.read_namespaced_deployment(deployment, rollouts.ns)
        return (d.status.ready_replicas or 0) == replicas

    wait_for(f"{replicas} pod(s) of the chart's Deployment ready", ready, timeout=60)


def restricted_pods(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Rollout whose pods the restricted Pod Security profile admits."""
    pod = manifest["spec"]["template"]["spec"]
    pod["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for container in pod["containers"]:
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return manifest


def selector(rollouts: Rollouts, service: str) -> dict[str, str]:
    svc = rollouts.core.read_namespaced_service(service, rollouts.ns)
    return dict(svc.spec.selector or {})


def canary_then_abort(rollouts: Rollouts, name: str, services: bool = False) -> None:
    """A canary that completes (with a promote at the indefinite pause), then one aborted.
    With ``services``, stable and canary Services whose selectors the operator pins."""
    extra: dict[str, Any] = {}
    if services:
        for role in ("stable", "canary"):
            rollouts.core.create_namespaced_service(
                rollouts.ns,
                {
                    "metadata": {"name": f"{name}-{role}"},
                    "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
                },
            )
        extra = {"stableService": f"{name}-stable", "canaryService": f"{name}-canary"}
    rollouts.create(restricted_pods(rollout_manifest(name, replicas=4, steps=STEPS, **extra)))
    first = rollouts.wait_healthy(name, 4, timeout=60)["stableRevision"]
    rollouts.set_image(name, "ramp-test/app:v2")
    paused = rollouts.wait(
        name, "paused at step 4", lambda s: s.get("phase") == "Paused", timeout=60
    )
    if services:
        pinned = {"app": name, "ramp.dev/revision": paused["canaryRevision"]}
        assert selector(rollouts, f"{name}-canary") == pinned
        assert selector(rollouts, f"{name}-stable")["ramp.dev/revision"] == first
    rollouts.request(name, "promote")
    done = rollouts.wait_healthy(name, 4, timeout=60)
    assert done["stableRevision"] != first
    rollouts.wait_events(name, "RolloutCompleted", 1)  # posted just after the status
    reasons = [e[1] for e in rollouts.events(name)]
    # Three steps completed by themselves; the indefinite pause was promoted.
    assert len(rollouts.step_history(name)) == len(STEPS) - 1, done
    assert reasons.count("Promoted") == 1 and "RolloutCompleted" in reasons, reasons

    rollouts.set_image(name, "ramp-test/app:v3")
    rollouts.wait(name, "paused again", lambda s: s.get("phase") == "Paused", timeout=60)
    rollouts.request(name, "abort")
    aborted = rollouts.wait(
        name,
        "aborted, canary at 0",
        lambda s: s.get("phase") == "Aborted" and not s.get("canaryReplicas"),
        timeout=60,
    )
    assert aborted["abortReason"] == "UserAbort"
    assert aborted["stableRevision"] == done["stableRevision"]
    assert rollouts.ready_pods(name) == {done["stableRevision"]: 4}


def assert_no_forbidden(operator: OperatorProcess) -> None:
    log = operator.current_log()
    for word in ("Forbidden", " 403", "forbidden"):
        assert word not in log, f"the operator was refused something:\n{operator.tail(40)}"


@pytest.fixture
def sa_operator(tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """Operator processes started by a test, stopped at its end."""
    procs: list[OperatorProcess] = []
    yield procs
    for p in procs:
        p.stop()


def test_cluster_scope_identity_completes_a_canary_and_an_abort_and_no_more(
    cluster: ClusterHandle, crds: None, tmp_path: Path, sa_operator: list[OperatorProcess]
) -> None:
    with (
        scratch_namespace(cluster, "rel", RESTRICTED) as release_ns,
        scratch_namespace(cluster, "app") as app_ns,
        scratch_namespace(cluster, "other") as other_ns,
    ):
        # Cluster-scoped names come from the release name: make it unique to this run.
        release = f"ramp-{release_ns[-6:]}"
        try:
            objects = helm_install(cluster, release, release_ns)
            assert {f"ClusterRole/{release}", f"ClusterRoleBinding/{release}"} <= objects.keys()
            assert not [k for k in objects if k.startswith(("Role/", "PodDisruptionBudget/"))]
            sa = f"{release_ns}/{release}"
            wait_chart_pods_ready(Rollouts(cluster.client, release_ns), release, 1)

            # The chart's arguments, with the Rollouts of this test's namespace only: other
            # tests' namespaces belong to the shared operator.
            args = local_args(container_args(objects, release), f"--namespace={app_ns}")
            kubeconfig = service_account_kubeconfig(cluster, release_ns, release, tmp_path / "kc")
            operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", args)
            sa_operator.append(operator)
            operator.start()
            started = time.monotonic()
            canary_then_abort(Rollouts(cluster.client, app_ns), "web")
            print(f"\nchart identity: canary + abort in {time.monotonic() - started:.1f}s")
            assert_no_forbidden(operator)

            allowed = [
                ("list", "rollouts.ramp.dev", None, None),
                ("watch", "deployments.apps", None, None),
                ("patch", "rollouts.ramp.dev", app_ns, "status"),
                # The give-back finalizer of workloadRef (docs/workloadref.md).
                ("patch", "rollouts.ramp.dev", app_ns, None),
                ("create", "deployments.apps", other_ns, None),
                ("delete", "deployments.apps", app_ns, None),
                ("create", "events", app_ns, None),
                ("patch", "events", app_ns, None),  # a repeated Event's count
                ("list", "analysistemplates.ramp.dev", other_ns, None),
            ]
            denied = [
                ("get", "secrets", app_ns, None),
                ("get", "secrets", release_ns, None),
                ("list", "secrets", None, None),
                ("get", "secrets", "kube-system", None),
                ("delete", "namespaces", None, None),
                ("create", "namespaces", None, None),
                ("update", "rollouts.ramp.dev", app_ns, None),
                ("delete", "rollouts.ramp.dev", app_ns, None),
                ("create", "pods", app_ns, None),
                ("delete", "pods", app_ns, None),
                ("create", "configmaps", app_ns, None),
                ("patch", "services", app_ns, None),
                ("create", "statefulsets.apps", app_ns, None),
                ("patch", "deployments.apps", app_ns, "scale"),
                ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, None),
                ("create", "rolebindings.rbac.authorization.k8s.io", app_ns, None),
                ("patch", "analysistemplates.ramp.dev", app_ns, None),
                ("update", "leases.coordination.k8s.io", release_ns, None),
                ("create", "serviceaccounts", release_ns, "token"),
                ("delete", "events", app_ns, None),
                ("update", "deployments.apps", app_ns, None),
            ]
            got = {
                (verb, res, ns, sub): can_i(cluster, sa, verb, res, ns, sub)
                for verb, res, ns, sub in allowed + denied
            }
            wrong = [k for k in allowed if not got[k]] + [k for k in denied if got[k]]
            assert not wrong, f"can-i answers not as expected (verb, resource, ns, sub): {wrong}"
        finally:
            helm_uninstall(cluster, release, release_ns)
        gone = cluster.kubectl("get", "clusterrole", release, check=False)
        assert gone.returncode != 0, "uninstall removes the cluster-wide RBAC"


def test_namespace_scope_acts_in_its_namespace_only(
    cluster: ClusterHandle, crds: None, tmp_path: Path, sa_operator: list[OperatorProcess]
) -> None:
    with (
        scratch_namespace(cluster, "nsm", RESTRICTED) as ns,
        scratch_namespace(cluster, "other") as other_ns,
    ):
        objects = helm_install(
            cluster,
            "ramp",
            ns,
            "--set",
            "scope=namespace,replicaCount=2,rbac.services=true",
            "--set",
            "prometheus.tokenSecret.name=prom-token",
        )
        # Cluster-wide only what cannot be namespaced: the /metrics reviews (TokenReview,
        # SubjectAccessReview) and the tenants' aggregated roles, named after the namespace.
        cluster_wide = sorted(k for k in objects if k.startswith("Cluster"))
        assert cluster_wide == [
            f"ClusterRole/{ns}-ramp-edit",
            f"ClusterRole/{ns}-ramp-metrics-auth",
            f"ClusterRole/{ns}-ramp-view",
            f"ClusterRoleBinding/{ns}-ramp-metrics-auth",
        ], cluster_wide
        assert "NetworkPolicy/ramp" in objects
        assert {"Role/ramp", "Role/ramp-self", "PodDisruptionBudget/ramp"} <= objects.keys()
        sa = f"{ns}/ramp"
        mine, theirs = Rollouts(cluster.client, ns), Rollouts(cluster.client, other_ns)
        wait_chart_pods_ready(mine, "ramp", 2)

        # The operator reads the Prometheus token at start-up: it must exist.
        cluster.kubectl(
            "create", "secret", "generic", "prom-token", "--from-literal=token=x", "-n", ns
        )
        args = local_args(container_args(objects, "ramp"))
        assert f"--namespace={ns}" in args and "--leader-elect" in args
        kubeconfig = service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kc")
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", args)
        sa_operator.append(operator)
        theirs.create(rollout_manifest("left-alone", replicas=2, steps=STEPS))
        operator.start()
        canary_then_abort(mine, "web", services=True)
        # The whole story above took seconds; the other namespace's Rollout was never touched.
        assert not theirs.status("left-alone"), theirs.status("left-alone")
        assert not theirs.deployments("left-alone")
        assert_no_forbidden(operator)
        lease = cluster.get_json("lease", "ramp", namespace=ns)
        assert lease["spec"]["holderIdentity"], lease

        allowed = [
            ("get", "secrets/prom-token", ns, None),
            ("watch", "secrets/prom-token", ns, None),
            ("patch", "services", ns, None),
            ("update", f"leases.coordination.k8s.io/{lease['metadata']['name']}", ns, None),
            ("create", "deployments.apps", ns, None),
            ("create", "tokenreviews.authentication.k8s.io", None, None),
            ("create", "subjectaccessreviews.authorization.k8s.io", None, None),
        ]
        denied = [
            ("get", "secrets/other", ns, None),
            ("list", "secrets", ns, None),
            ("get", "secrets/prom-token", other_ns, None),
            ("update", "leases.coordination.k8s.io/someone-elses", ns, None),
            ("list", "rollouts.ramp.dev", None, None),
            ("get", "rollouts.ramp.dev", other_ns, None),
            ("create", "deployments.apps", other_ns, None),
            ("create", "services", ns, None),
            ("delete", "services", ns, None),
            ("delete", "namespaces", None, None),
            ("list", "namespaces", None, None),
            ("list", "customresourcedefinitions.apiextensions.k8s.io", None, None),
        ]
        got = {
            (verb, res, n, sub): can_i(cluster, sa, verb, res, n, sub)
            for verb, res, n, sub in allowed + denied
        }
        wrong = [k for k in allowed if not got[k]] + [k for k in denied if got[k]]
        assert not wrong, f"can-i answers not as expected (verb, resource, ns, sub): {wrong}"

        # Tenants: a RoleBinding to the built-in edit role covers Rollouts and templates
        # (the chart's roles are aggregated into it), never the operator's status.
        cluster.kubectl("create", "serviceaccount", "tenant", namespace=other_ns)
        cluster.kubectl(
            "create",
            "rolebinding",
            "tenant-edit",
            "--clusterrole=edit",
            f"--serviceaccount={other_ns}:tenant",
            namespace=other_ns,
        )
        tenant = f"{other_ns}/tenant"
        wait_for(
            "the edit role to aggregate Rollouts",
            lambda: can_i(cluster, tenant, "create", "rollouts.ramp.dev", other_ns),
            timeout=30,
        )
        assert can_i(cluster, tenant, "delete", "analysistemplates.ramp.dev", other_ns)
        assert not can_i(cluster, tenant, "patch", "rollouts.ramp.dev", other_ns, "status")
        assert not can_i(cluster, tenant, "create", "rollouts.ramp.dev", ns)
        with contextlib.suppress(KubectlError):
            helm_uninstall(cluster, "ramp", ns)
