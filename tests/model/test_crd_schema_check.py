"""The compiled schema check of :mod:`model.crd_schema` (the oracle's (d) at a fraction of
the validator's cost) never calls valid what the validator refuses: it is compared with
:class:`model.crd_schema.StructuralValidator` on statuses the planner wrote, each mutated
at every field (a wrong type, a bool for a number, an unknown key, a key removed, a string
too long, a value out of its enum), and on specs the schema fuzzer generates, accepted
and refused. A check that says valid where the validator finds an error hides a (d)."""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterator
from typing import Any

from model.crd_schema import _valid, _validator, schema_errors, status_schema
from model.schema_fuzz import generate, spec_schema
from model.sim import Cluster, Config, metric, template

ODD = [None, True, False, 0, -1, 1.5, 10**12, "", "x" * 300, "Healthy", [], [{}], {}, {"z": 1}]


def statuses() -> list[dict[str, Any]]:
    """Statuses a rollout writes: steps, analysis runs, conditions, an abort."""
    cfg = Config(
        replicas=3,
        max_surge=1,
        max_unavailable=0,
        steps=[{"setWeight": 20}, {"analysis": {"metrics": [metric("step")]}}, {"pause": {}}],
        background={"metrics": [metric("bg")], "startingStep": 0},
        services=True,
    )
    cluster = Cluster(cfg)
    seen = []
    for image in (2, 3):
        cluster.spec["template"] = template(image)
        cluster.bump(spec=True)
        for _ in range(8):
            cluster.advance(3, controller_acts=True)
            result = cluster.reconcile()
            if result is not None:
                seen.append(result.status.to_k8s())
    return seen


def edges(value: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """``value`` at each bound of its schema, and one past it."""
    for bound, step in (("maxLength", 1), ("minLength", -1)):
        if isinstance(value, str) and bound in schema:
            yield from ("a" * max(schema[bound] + d, 0) for d in (0, step))
    for bound, step in (("maximum", 1), ("minimum", -1)):
        if isinstance(value, int) and bound in schema:
            yield from (schema[bound], schema[bound] + step, float(schema[bound] + step))
    for bound, step in (("maxItems", 1), ("minItems", -1)):
        if isinstance(value, list) and value and bound in schema:
            yield from ([value[0]] * max(schema[bound] + d, 0) for d in (0, step))
    if isinstance(value, dict) and "maxProperties" in schema:
        for n in (schema["maxProperties"], schema["maxProperties"] + 1):
            yield {**{f"k{i}": value[k] for i, k in enumerate(list(value) * n)}}


def mutations(value: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """``value`` changed at one place each time."""
    for odd in ODD:
        yield copy.deepcopy(odd)
    yield from edges(value, schema)
    if isinstance(value, dict):
        yield {**value, "unknownField": 1}
        for key in value:
            yield {k: v for k, v in value.items() if k != key}
            sub = (schema.get("properties") or {}).get(key) or schema.get("additionalProperties")
            for changed in mutations(value[key], sub if isinstance(sub, dict) else {}):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for changed in mutations(item, schema.get("items") or {}):
                yield [*value[:i], changed, *value[i + 1 :]]


def agree(value: Any, schema: dict[str, Any]) -> bool:
    refused = any(True for _ in _validator(schema).iter_errors(value))
    assert not (_valid(value, schema) and refused), (value, schema_errors(value, schema))
    return not refused


def test_the_compiled_check_agrees_with_the_validator_on_statuses() -> None:
    schema = status_schema()
    valid = invalid = 0
    seen = statuses()
    for status in (seen[len(seen) // 3], max(seen, key=lambda s: len(str(s)))):
        assert agree(status, schema) and _valid(status, schema), schema_errors(status, schema)
        for mutated in mutations(status, schema):
            if agree(mutated, schema):
                valid += 1
                assert _valid(mutated, schema), mutated  # the fast path is taken
            else:
                invalid += 1
    assert valid > 50 and invalid > 300, (valid, invalid)


def test_the_compiled_check_agrees_with_the_validator_on_specs() -> None:
    rng = random.Random(19)
    kept = {"valid": 0, "invalid": 0}
    for kind in ("rollouts", "analysistemplates"):
        schema = spec_schema(kind)
        for _ in range(20):
            spec = generate(rng, schema)
            kept["valid" if agree(spec, schema) else "invalid"] += 1
            stride = 11 + rng.randrange(5)
            for mutated in itertools.islice(mutations(spec, schema), 0, None, stride):
                kept["valid" if agree(mutated, schema) else "invalid"] += 1
    assert min(kept.values()) > 50, kept


KEYWORDS = {
    "type": "object",
    "required": ["a"],
    "properties": {
        "a": {"type": "string", "maxLength": 3, "minLength": 1, "pattern": "^[a-z]+$"},
        "b": {"type": "integer", "maximum": 5, "minimum": 1},
        "c": {"type": "number", "maximum": 5, "exclusiveMaximum": True},
        "d": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"enum": ["x", "y"]}},
        "e": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "boolean"}},
        "f": {"x-kubernetes-int-or-string": True},
        "g": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
        "h": {"type": ["string", "null"], "additionalProperties": False, "properties": {}},
    },
}


def test_each_keyword_at_its_bounds() -> None:
    values = {
        "a": ["", "a", "abc", "abcd", "A", 1],
        "b": [0, 1, 5, 6, 2.0, True, "1"],
        "c": [4.9, 5, 5.0, -1, None],
        "d": [[], ["x"], ["x", "y"], ["x", "y", "x"], ["z"], [1]],
        "e": [{}, {"k": True}, {"k": 1}, {"k": True, "l": False}, []],
        "f": [1, "1", True, 1.5, None],
        "g": [{}, {"any": 1}, []],
        "h": ["s", None, 1, {}],
    }
    outcomes = set()
    for key, options in values.items():
        for value in options:
            outcomes.add(agree({"a": "ab", key: value}, KEYWORDS))
    assert not agree({"b": 1}, KEYWORDS) and not agree({"a": "ab", "z": 1}, KEYWORDS)
    assert outcomes == {True, False} and _valid({"a": "ab"}, KEYWORDS)  # compiled
