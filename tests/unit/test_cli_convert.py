"""``kubectl ramp convert``: golden tests over Argo Rollouts manifests.

Each ``golden/convert/NN-*.yaml`` is an Argo manifest in the shape Argo's docs use;
``NN-*.out.yaml`` is the exact stdout (the Ramp manifests) and ``NN-*.warnings.txt`` the
exact stderr (one line per field that did not carry over). Regenerate after an intended
change with ``RAMP_UPDATE_GOLDEN=1 pytest tests/unit/test_cli_convert.py`` and review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from ramp.analysis.cel import check_condition
from ramp.api.analysis import AnalysisTemplateSpec
from ramp.api.rollout import Rollout
from ramp.cli import main
from ramp.cli.convert import (
    NotConvertible,
    convert_condition,
    convert_documents,
    rollout_for_deployment,
)

GOLDEN = Path(__file__).parent / "golden" / "convert"
UPDATE = bool(os.environ.get("RAMP_UPDATE_GOLDEN"))
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".out.yaml"))

# The fields each case must warn about (the goldens pin the wording; this pins intent).
EXPECTED_WARNINGS: dict[str, list[str]] = {
    "01-canary-basic": ["spec.minReadySeconds"],
    "02-canary-background-analysis": [],
    "03-canary-step-analysis-hash": [],
    "04-bluegreen": [],
    "05-bluegreen-extras": [
        "spec.strategy.blueGreen.activeMetadata",
        "spec.strategy.blueGreen.antiAffinity",
        "spec.strategy.blueGreen.previewMetadata",
        "spec.strategy.blueGreen.scaleDownDelayRevisionLimit",
    ],
    "06-workloadref": [],
    "07-workloadref-replicaset": ["spec.workloadRef.kind"],
    "08-traffic-routing": [
        "spec.strategy.canary.dynamicStableScale",
        "spec.strategy.canary.trafficRouting",
        "spec.strategy.canary.steps[0].setCanaryScale",
        "spec.strategy.canary.steps[1].setHeaderRoute",
    ],
    "09-experiment": ["spec.strategy.canary.steps[0].experiment", "Experiment/example-experiment"],
    "10-providers": [
        "spec.args[0].valueFrom",
        "spec.metrics[1].provider.datadog",
        "spec.metrics[2].successCondition",
        "spec.metrics[2].failureCondition",
        "spec.metrics[2].provider.prometheus.authentication",
    ],
    "11-cluster-template": [],
    "12-passthrough": [],
    "13-checks": [
        "spec.metrics[0].provider.job.spec.activeDeadlineSeconds",
        "spec.metrics[0].provider.job.spec.backoffLimit",
    ],
    "14-gateway-api": [
        "spec.strategy.canary.trafficRouting.plugins.argoproj-labs/gatewayAPI.namespace"
    ],
}


@pytest.mark.parametrize("manifest", CASES, ids=[c.stem for c in CASES])
def test_convert_matches_golden(capsys: pytest.CaptureFixture[str], manifest: Path) -> None:
    code = main(["convert", "-f", str(manifest)])
    out, err = capsys.readouterr()
    out_path = manifest.with_suffix(".out.yaml")
    err_path = manifest.with_suffix(".warnings.txt")
    if UPDATE:
        out_path.write_text(out)
        err_path.write_text(err)
    assert out == out_path.read_text(), f"stdout differs from {out_path}"
    assert err == err_path.read_text(), f"stderr differs from {err_path}"
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    expected = EXPECTED_WARNINGS[manifest.stem]
    assert code == (3 if expected else 0), err
    assert len(warnings) == len(expected), warnings
    for fieldname in expected:
        assert any(fieldname in w for w in warnings), (fieldname, warnings)


def test_there_are_at_least_ten_cases() -> None:
    assert len(CASES) >= 10
    assert {c.stem for c in CASES} == set(EXPECTED_WARNINGS)


@pytest.mark.parametrize("manifest", CASES, ids=[c.stem for c in CASES])
def test_converted_manifests_are_valid_ramp_objects(manifest: Path) -> None:
    """Every converted Rollout and AnalysisTemplate passes Ramp's own models, and every
    converted condition compiles as CEL."""
    for doc in yaml.safe_load_all(manifest.with_suffix(".out.yaml").read_text()):
        if doc.get("apiVersion") != "ramp.dev/v1alpha1":
            continue
        if doc["kind"] == "Rollout":
            spec = doc["spec"]
            if "workloadRef" in spec and spec["workloadRef"]["kind"] != "Deployment":
                continue  # warned: the API server refuses it
            Rollout.model_validate(doc)
        else:
            spec = AnalysisTemplateSpec.model_validate(doc["spec"])
            for metric in spec.metrics:
                for cond in (metric.success_condition, metric.failure_condition):
                    if cond and "(" not in cond.replace("!(", ""):
                        assert check_condition(cond) is None, cond


def test_pod_template_hash_arguments_become_revision_placeholders() -> None:
    docs = list(yaml.safe_load_all((GOLDEN / "03-canary-step-analysis-hash.out.yaml").read_text()))
    template = next(d for d in docs if d["kind"] == "AnalysisTemplate")
    query = template["spec"]["metrics"][0]["prometheus"]["query"]
    assert "{{canaryRevision}}" in query and "args." not in query
    assert "args" not in template["spec"]
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    assert "args" not in rollout["spec"]["strategy"]["canary"]["steps"][2]["analysis"]


@pytest.mark.parametrize(
    ("argo", "cel"),
    [
        ("result[0] >= 0.95", "result >= 0.95"),
        ("result[0] < 0.05 and result[0] >= 0", "result < 0.05 && result >= 0.0"),
        ("not (result[0] < 0.05)", "!(result < 0.05)"),
        ("result == 1 or result > 2.5", "result == 1.0 || result > 2.5"),
    ],
)
def test_conditions_are_rewritten_to_cel(argo: str, cel: str) -> None:
    converted, problems = convert_condition(argo)
    assert (converted, problems) == (cel, [])
    assert check_condition(converted) is None


def test_rollout_for_a_live_deployment_adopts_it() -> None:
    dep = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 6}}
    rollout = rollout_for_deployment(dep)
    assert rollout["spec"]["workloadRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "scaleDown": "progressively",
    }
    assert rollout["spec"]["replicas"] == 6


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (
            {"labels": {"ramp.dev/rollout": "shop", "ramp.dev/revision": "abc"}},
            "is a revision of Rollout shop",
        ),
        (
            {
                "ownerReferences": [
                    {"apiVersion": "ramp.dev/v1alpha1", "kind": "Rollout", "name": "shop"}
                ]
            },
            "is a revision of Rollout shop",
        ),
        ({"annotations": {"ramp.dev/workload-of": "shop"}}, "already adopted by Rollout shop"),
        (
            {
                "annotations": {"ramp.dev/workload-of": "shop"},
                "labels": {"ramp.dev/rollout": "Adopted"},  # the operator's watch label
            },
            "already adopted by Rollout shop",
        ),
    ],
    ids=["child-label", "child-owner", "adopted", "adopted-and-watched"],
)
def test_a_deployment_ramp_runs_already_is_not_converted(
    meta: dict[str, object], words: str
) -> None:
    dep = {"metadata": {"name": "shop-abc", "namespace": "shop", **meta}, "spec": {"replicas": 0}}
    with pytest.raises(NotConvertible, match=words):
        rollout_for_deployment(dep)
    other = {
        "metadata": {
            "name": "web",
            "ownerReferences": [
                {"kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1", "name": "x"}
            ],
        },
        "spec": {"replicas": 2},
    }
    assert rollout_for_deployment(other)["spec"]["replicas"] == 2  # not Ramp's


ADDRESS_CASE = """
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: web:1}]}}
  strategy:
    canary:
      steps:
      - analysis:
          templates: [{templateName: up}]
          args: [{name: prom-ns, value: monitoring}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: up}
spec:
  args: [{name: prom-ns}, {name: prom-port, value: "9090"}, {name: host}]
  metrics:
  - name: bound
    successCondition: result[0] == 1
    provider:
      prometheus:
        address: "http://prometheus.{{args.prom-ns}}:{{ args.prom-port }}"
        query: up
  - name: unbound
    successCondition: result[0] == 1
    provider:
      prometheus: {address: "http://{{args.host}}:9090", query: up}
"""


def test_argument_placeholders_in_the_address_are_resolved_or_warned() -> None:
    """Ramp's Prometheus address is literal (Argo's is templated): a placeholder left in
    it would be queried as is, so it is resolved from the Rollout's value (or the
    template's default) or named in a warning."""
    result = convert_documents(yaml.safe_load_all(ADDRESS_CASE))
    metrics = result.documents[1]["spec"]["metrics"]
    assert metrics[0]["prometheus"]["address"] == "http://prometheus.monitoring:9090"
    assert metrics[1]["prometheus"]["address"] == "http://{{args.host}}:9090"
    assert result.warnings == [
        "AnalysisTemplate/up: spec.metrics[1].provider.prometheus.address: "
        "http://{{args.host}}:9090: placeholders in the address are not supported"
    ]
    assert any("resolved to http://prometheus.monitoring:9090" in n for n in result.notes)
