"""Generate the CustomResourceDefinitions in ``crds/`` from the pydantic models.

``python -m ramp.crdgen crds`` writes them; ``--check`` fails when the committed files
differ from what the models say (the drift test and ``make crds-check`` use it).

The pydantic JSON schema is turned into a Kubernetes *structural* schema: references
inlined, ``Optional`` collapsed to its type (unset fields are simply absent), ``int | str``
as ``x-kubernetes-int-or-string``, free-form objects as
``x-kubernetes-preserve-unknown-fields``, titles and defaults dropped (the API server must
not rewrite what users and GitOps tools applied).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from ramp import GROUP, VERSION
from ramp.api.analysis import AnalysisTemplateSpec
from ramp.api.base import ApiModel
from ramp.api.rollout import RolloutSpec, RolloutStatus

_DROP = {"title", "default", "additionalProperties"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k != "$defs"}


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one resolved JSON-schema node into a structural OpenAPI v3 node."""
    node = dict(node)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        types = sorted(b.get("type", "") for b in branches)
        if types == ["integer", "string"]:
            extra = {k: v for k, v in node.items() if k not in _DROP}
            extra.pop("minimum", None)
            return {**extra, "x-kubernetes-int-or-string": True}
        if len(branches) != 1:
            raise ValueError(f"cannot express anyOf {any_of} in a structural schema")
        inner = _structural(branches[0])
        outer = {k: v for k, v in node.items() if k not in _DROP}
        return (
            {**inner, **outer}
            if "x-kubernetes-validations" not in outer
            else {
                **inner,
                **outer,
                "x-kubernetes-validations": inner.get("x-kubernetes-validations", [])
                + outer["x-kubernetes-validations"],
            }
        )
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {}
    key: str
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value)
        else:
            out[key] = value
    extra_props = node.get("additionalProperties")
    if out.get("type") == "object" and "properties" not in out:
        if isinstance(extra_props, dict) and extra_props:
            out["additionalProperties"] = _structural(extra_props)
        elif not out.get("x-kubernetes-preserve-unknown-fields"):
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if (
        out.get("x-kubernetes-preserve-unknown-fields")
        and "type" not in out
        and "properties" in out
    ):
        out["type"] = "object"
    if "required" in out and not out["required"]:
        del out["required"]
    return out


def schema_of(model: type[ApiModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _structural(_resolve(raw, defs))


def _crd(
    kind: str,
    plural: str,
    short: list[str],
    spec_schema: dict[str, Any],
    status_schema: dict[str, Any] | None,
    columns: list[dict[str, Any]],
    scale: bool,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec_schema,
    }
    if status_schema is not None:
        properties["status"] = status_schema
    subresources: dict[str, Any] = {}
    if status_schema is not None:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "required": ["spec"],
                "properties": properties,
            }
        },
    }
    if subresources:
        version["subresources"] = subresources
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
                "categories": ["ramp"],
            },
            "versions": [version],
        },
    }


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        col["priority"] = priority
    return col


def crds() -> dict[str, dict[str, Any]]:
    """File name → CRD object."""
    rollout = _crd(
        "Rollout",
        "rollouts",
        ["ro"],
        schema_of(RolloutSpec),
        schema_of(RolloutStatus),
        [
            _column("Phase", ".status.phase"),
            _column("Desired", ".status.weights.desired", "integer"),
            _column("Actual", ".status.weights.actual", "integer"),
            _column("Step", ".status.currentStepIndex", "integer"),
            _column("Ready", ".status.readyReplicas", "integer"),
            _column("Age", ".metadata.creationTimestamp", "date"),
            _column("Message", ".status.message", priority=1),
        ],
        scale=True,
    )
    template = _crd(
        "AnalysisTemplate",
        "analysistemplates",
        ["at"],
        schema_of(AnalysisTemplateSpec),
        None,
        [_column("Age", ".metadata.creationTimestamp", "date")],
        scale=False,
    )
    return {"rollouts.ramp.dev.yaml": rollout, "analysistemplates.ramp.dev.yaml": template}


def render(obj: dict[str, Any]) -> str:
    header = "# Generated by `make crds` (python -m ramp.crdgen) from ramp.api; do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--check", action="store_true", help="fail when files differ")
    args = parser.parse_args(argv)
    drift = []
    for name, obj in crds().items():
        path = args.directory / name
        text = render(obj)
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if drift:
        print(
            "CRDs drifted from ramp.api (run `make crds` and commit): " + ", ".join(drift),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
