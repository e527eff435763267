"""What the API server would refuse (or silently prune) in an object: the generated CRD's
OpenAPI schema checked by jsonschema (draft 4, the base of OpenAPI 3.0), with the two
Kubernetes extensions the CRD uses: ``x-kubernetes-int-or-string`` and the pruning of
unknown fields (a ``properties`` without ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields``). The CEL rules are :mod:`model.schema_fuzz`'s."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft4Validator, ValidationError, validators

from ramp.crdgen import crds

_properties = Draft4Validator.VALIDATORS["properties"]


def _known_properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    yield from _properties(validator, properties, instance, schema)
    if not validator.is_type(instance, "object") or "additionalProperties" in schema:
        return
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    for key in instance:
        if key not in properties:
            yield ValidationError("unknown field (the API server would prune it)", path=[key])


def _int_or_string(
    validator: Any, flag: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if flag and (not isinstance(instance, int | str) or isinstance(instance, bool)):
        yield ValidationError("not an int or a string")


StructuralValidator = validators.extend(
    Draft4Validator,
    {"properties": _known_properties, "x-kubernetes-int-or-string": _int_or_string},
)


_validators: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    """One validator per schema object (the schemas are cached; building one costs more
    than a validation)."""
    kept = _validators.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = _validators[id(schema)] = (schema, StructuralValidator(schema))
    return kept[1]


@functools.cache
def status_schema() -> dict[str, Any]:
    """The Rollout status schema of the generated CRD (``ramp.crdgen``)."""
    crd = crds()["rollouts.ramp.dev.yaml"]
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["status"])


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "status") -> list[str]:
    """Every violation of ``schema`` in ``value``, each as ``path.to[0].field: why``."""
    errors = []
    for error in _validator(schema).iter_errors(value):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"{path}{where}: {error.message}")
    return sorted(errors)
