"""What the API server would refuse (or silently prune) in an object: the generated CRD's
OpenAPI schema checked by jsonschema (draft 4, the base of OpenAPI 3.0), with the two
Kubernetes extensions the CRD uses: ``x-kubernetes-int-or-string`` and the pruning of
unknown fields (a ``properties`` without ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields``). The CEL rules are :mod:`model.schema_fuzz`'s."""

from __future__ import annotations

import copy
import functools
import numbers
import re
from collections.abc import Callable, Iterator, Mapping
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


Check = Callable[[Any], bool]

_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_HANDLED = {
    "additionalProperties", "enum", "items", "maxItems", "maxLength", "maxProperties",
    "maximum", "minItems", "minLength", "minimum", "pattern", "properties", "required",
    "type", "x-kubernetes-int-or-string", "exclusiveMaximum", "exclusiveMinimum",
}  # fmt: skip
_KEYWORDS = set(StructuralValidator.VALIDATORS) | {"exclusiveMaximum", "exclusiveMinimum"}


class _Unsupported(Exception):
    pass


def _compile(schema: Any) -> Check:
    """``schema`` as one function: True only when :class:`StructuralValidator` finds no
    error in the instance (it mirrors its keywords, draft 4's semantics); a schema with a
    keyword it does not mirror raises :class:`_Unsupported` (the validator then decides)."""
    if not isinstance(schema, dict):
        raise _Unsupported(schema)
    unsupported = _KEYWORDS & set(schema) - _HANDLED
    if unsupported:
        raise _Unsupported(unsupported)
    checks: list[Check] = []
    add = checks.append
    number = _TYPES["number"]
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not all(isinstance(n, str) and n in _TYPES for n in names):
            raise _Unsupported(names)
        types = [_TYPES[n] for n in names]
        add(types[0] if len(types) == 1 else lambda v: any(t(v) for t in types))
    if "enum" in schema:
        enum = schema["enum"]
        if not isinstance(enum, list) or not all(isinstance(e, str) for e in enum):
            raise _Unsupported(enum)
        allowed = frozenset(enum)
        add(lambda v: isinstance(v, str) and v in allowed)
    if schema.get("x-kubernetes-int-or-string"):
        add(lambda v: isinstance(v, int | str) and not isinstance(v, bool))
    for key, kind, compare in (
        ("maxLength", str, lambda n, bound: n <= bound),
        ("minLength", str, lambda n, bound: n >= bound),
        ("maxItems", list, lambda n, bound: n <= bound),
        ("minItems", list, lambda n, bound: n >= bound),
        ("maxProperties", dict, lambda n, bound: n <= bound),
    ):
        if key in schema:
            add(lambda v, b=schema[key], k=kind, c=compare: not isinstance(v, k) or c(len(v), b))
    if "maximum" in schema:
        top, exclusive = schema["maximum"], schema.get("exclusiveMaximum", False)
        add(lambda v: not number(v) or (v < top if exclusive else v <= top))
    if "minimum" in schema:
        bottom, exclusive_min = schema["minimum"], schema.get("exclusiveMinimum", False)
        add(lambda v: not number(v) or (v > bottom if exclusive_min else v >= bottom))
    if "pattern" in schema:
        pattern = schema["pattern"]
        add(lambda v: not isinstance(v, str) or re.search(pattern, v) is not None)
    if "required" in schema:
        required = list(schema["required"])
        add(lambda v: not isinstance(v, dict) or all(r in v for r in required))
    if "items" in schema:
        item = _compile(schema["items"])

        def items(v: Any) -> bool:
            if isinstance(v, list):
                for x in v:
                    if not item(x):
                        return False
            return True

        add(items)
    properties = schema.get("properties")
    extra: Check | None = None
    closed = False  # unknown keys are errors (additionalProperties false, or pruned)
    if "additionalProperties" in schema:
        more = schema["additionalProperties"]
        if isinstance(more, dict):
            extra = _compile(more)
        elif isinstance(more, bool):
            closed = not more
        else:
            raise _Unsupported(more)
    elif properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
        closed = True
    if properties is not None or "additionalProperties" in schema:
        if not isinstance(properties or {}, dict):
            raise _Unsupported(properties)
        known = {k: _compile(sub) for k, sub in (properties or {}).items()}

        def fields(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, value in v.items():
                check = known.get(key)
                if check is not None:
                    if not check(value):
                        return False
                elif closed or (extra is not None and not extra(value)):
                    return False
            return True

        add(fields)
    if len(checks) <= 1:
        return checks[0] if checks else lambda v: True

    def every(v: Any) -> bool:
        for check in checks:  # noqa: SIM110 (a loop: all() of a generator costs more)
            if not check(v):
                return False
        return True

    return every


_compiled: dict[int, tuple[Mapping[str, Any], Check | None]] = {}


def _valid(value: Any, schema: Mapping[str, Any]) -> bool:
    """True: ``value`` is certainly valid against ``schema`` (a compiled check, kept per
    schema object as the validators are). False: the validator must say why (or if)."""
    kept = _compiled.get(id(schema))
    if kept is None or kept[0] is not schema:
        try:
            check: Check | None = _compile(schema)
        except _Unsupported:
            check = None
        kept = _compiled[id(schema)] = (schema, check)
    return kept[1] is not None and kept[1](value)


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "status") -> list[str]:
    """Every violation of ``schema`` in ``value``, each as ``path.to[0].field: why``.
    The compiled check answers for a valid value (most of them, at a fraction of the
    validator's cost); any other is the validator's to explain."""
    if _valid(value, schema):
        return []
    errors = []
    for error in _validator(schema).iter_errors(value):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        errors.append(f"{path}{where}: {error.message}")
    return sorted(errors)


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists, scalars) at a fraction of
    :func:`copy.deepcopy`'s cost; anything else is deep-copied as before."""
    kind = type(value)
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    return copy.deepcopy(value)
