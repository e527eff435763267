"""Tracked configuration, the pure part: which objects a pod template references, the
template rewritten to per-content copies, and a missing object named."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ramp.api.labels import revision_hash
from ramp.core.config_tracking import (
    CONFIG_ANNOTATION,
    ConfigRef,
    config_of,
    copy_name,
    data_digest,
    referenced,
    references,
    track,
)
from ramp.core.names import name_problem

CM, SECRET = "ConfigMap", "Secret"


def template(**pod: Any) -> dict[str, Any]:
    spec = {"containers": [{"name": "app", "image": "app:1"}], **pod}
    return {"metadata": {"labels": {"app": "web"}}, "spec": spec}


def container(**fields: Any) -> dict[str, Any]:
    return template(containers=[{"name": "app", "image": "app:1", **fields}])


# (id, template, where the name sits in the rewritten template, kind)
PLACES: list[tuple[str, dict[str, Any], tuple[Any, ...], str]] = [
    (
        "env-configMapKeyRef",
        container(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "o", "key": "k"}}}]),
        ("spec", "containers", 0, "env", 0, "valueFrom", "configMapKeyRef", "name"),
        CM,
    ),
    (
        "env-secretKeyRef",
        container(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "o", "key": "k"}}}]),
        ("spec", "containers", 0, "env", 0, "valueFrom", "secretKeyRef", "name"),
        SECRET,
    ),
    (
        "envFrom-configMapRef",
        container(envFrom=[{"configMapRef": {"name": "o"}}]),
        ("spec", "containers", 0, "envFrom", 0, "configMapRef", "name"),
        CM,
    ),
    (
        "envFrom-secretRef",
        container(envFrom=[{"prefix": "X_", "secretRef": {"name": "o"}}]),
        ("spec", "containers", 0, "envFrom", 0, "secretRef", "name"),
        SECRET,
    ),
    (
        "volume-configMap",
        template(volumes=[{"name": "v", "configMap": {"name": "o"}}]),
        ("spec", "volumes", 0, "configMap", "name"),
        CM,
    ),
    (
        "volume-secret",
        template(volumes=[{"name": "v", "secret": {"secretName": "o"}}]),
        ("spec", "volumes", 0, "secret", "secretName"),
        SECRET,
    ),
    (
        "projected-configMap",
        template(volumes=[{"name": "v", "projected": {"sources": [{"configMap": {"name": "o"}}]}}]),
        ("spec", "volumes", 0, "projected", "sources", 0, "configMap", "name"),
        CM,
    ),
    (
        "projected-secret",
        template(
            volumes=[
                {
                    "name": "v",
                    "projected": {
                        "sources": [{"serviceAccountToken": {}}, {"secret": {"name": "o"}}]
                    },
                }
            ]
        ),
        ("spec", "volumes", 0, "projected", "sources", 1, "secret", "name"),
        SECRET,
    ),
    (
        "initContainer-envFrom",
        template(initContainers=[{"name": "i", "envFrom": [{"configMapRef": {"name": "o"}}]}]),
        ("spec", "initContainers", 0, "envFrom", 0, "configMapRef", "name"),
        CM,
    ),
]


def dig(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@pytest.mark.parametrize(
    ("tpl", "path", "kind"), [p[1:] for p in PLACES], ids=[p[0] for p in PLACES]
)
def test_every_kind_of_reference_is_rewritten_to_its_copy(
    tpl: dict[str, Any], path: tuple[Any, ...], kind: str
) -> None:
    before = copy.deepcopy(tpl)
    assert referenced(tpl) == [ConfigRef(kind, "o")]
    out = track(tpl, {ConfigRef(kind, "o"): "abcdef0123456789"})
    assert out.problem is None
    assert dig(out.template, path) == "o-abcdef0123"
    assert [(c.kind, c.source, c.name) for c in out.copies] == [(kind, "o", "o-abcdef0123")]
    assert config_of(out.template) == {f"{kind}/o": "o-abcdef0123"}
    assert tpl == before  # the template as written is not touched


def test_a_data_change_is_a_new_revision_and_the_old_data_the_old_one() -> None:
    tpl = container(envFrom=[{"configMapRef": {"name": "settings"}}])
    ref = ConfigRef(CM, "settings")
    v1 = track(tpl, {ref: data_digest({"mode": "a"})}).template
    v2 = track(tpl, {ref: data_digest({"mode": "b"})}).template
    again = track(tpl, {ref: data_digest({"mode": "a"})}).template
    assert revision_hash(v1) != revision_hash(v2)
    assert revision_hash(v1) == revision_hash(again)  # back to the old data: a rollback
    assert revision_hash(v1) != revision_hash(tpl)


def test_a_missing_object_is_named_and_nothing_is_rewritten() -> None:
    tpl = template(
        volumes=[
            {"name": "a", "configMap": {"name": "here"}},
            {"name": "b", "secret": {"secretName": "gone"}},
        ]
    )
    out = track(tpl, {ConfigRef(CM, "here"): "1" * 64})  # the Secret was not found
    assert out.problem == "Secret gone (spec.template.spec.volumes[1].secret) not found"
    assert out.template == tpl and out.copies == ()


def test_an_optional_missing_object_is_left_as_written() -> None:
    tpl = container(
        envFrom=[
            {"configMapRef": {"name": "maybe", "optional": True}},
            {"configMapRef": {"name": "here"}},
        ]
    )
    out = track(tpl, {ConfigRef(CM, "maybe"): None, ConfigRef(CM, "here"): "2" * 64})
    assert out.problem is None
    names = [e["configMapRef"]["name"] for e in out.template["spec"]["containers"][0]["envFrom"]]
    assert names == ["maybe", "here-2222222222"]
    assert [c.source for c in out.copies] == ["here"]


def test_one_copy_per_object_and_a_configmap_and_secret_of_one_name_apart() -> None:
    tpl = template(
        containers=[
            {
                "name": "a",
                "envFrom": [{"configMapRef": {"name": "x"}}, {"secretRef": {"name": "x"}}],
            },
            {
                "name": "b",
                "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}],
            },
        ],
        volumes=[{"name": "v", "configMap": {"name": "x"}}],
    )
    out = track(tpl, {ConfigRef(CM, "x"): "a" * 64, ConfigRef(SECRET, "x"): "b" * 64})
    assert [(c.kind, c.name) for c in out.copies] == [
        (CM, "x-aaaaaaaaaa"),
        (SECRET, "x-bbbbbbbbbb"),
    ]
    assert out.template["metadata"]["annotations"][CONFIG_ANNOTATION] == (
        '{"ConfigMap/x":"x-aaaaaaaaaa","Secret/x":"x-bbbbbbbbbb"}'
    )


def test_no_reference_no_change() -> None:
    tpl = template()
    out = track(tpl, {})
    assert out.template == tpl and out.copies == () and out.problem is None
    assert config_of(tpl) == {}


@pytest.mark.parametrize("length", [1, 200, 242, 243, 253])
def test_copy_names_always_fit(length: int) -> None:
    source = ("a" * length)[:length]
    name = copy_name(source, "f" * 64)
    assert name_problem(name) is None and len(name) <= 253
    assert copy_name(source, "e" * 64) != name  # other data, other copy


def test_a_secret_digest_is_keyed() -> None:
    data = {"password": "aHVudGVyMg=="}
    assert data_digest(data, "uid-1") != data_digest(data, "uid-2") != data_digest(data)
    assert data_digest(data, "uid-1") == data_digest(dict(data), "uid-1")


def test_malformed_references_are_skipped_not_fatal() -> None:
    tpl = template(
        volumes=["nope", {"name": "v", "configMap": {}}, {"projected": {"sources": "x"}}],
        containers=[{"name": "a", "envFrom": [None, {"configMapRef": {"name": ""}}]}],
    )
    assert references(tpl) == []
    assert track(tpl, {}).template == tpl
