"""Tracked configuration: the ConfigMaps and Secrets a pod template references belong to
its revision. Pure.

When a Rollout opts in (``spec.trackConfig``), the shell reads every ConfigMap and Secret
the template references (:func:`references`: env, envFrom, volumes, projected volumes)
and hands the digest of each one's data to :func:`track`, which returns the template
rewritten to read an immutable *copy* per content (``<name>-<digest>``) and the copies
to make. The revision is the hash of the rewritten template, so a change of a referenced
object's data is a new revision, rolled out through the same steps and analysis; each
revision's pods read the copy made for it, so the stable keeps its old configuration
while the canary runs the new one, and an abort leaves the stable on its copy.

The core never sees the data, only digests (for a Secret the shell keys the digest with
the Secret's uid, so a short digest of a guessable value in a pod spec says nothing).

>>> tpl = {"spec": {"containers": [{"name": "app", "envFrom": [
...     {"configMapRef": {"name": "settings"}}]}]}}
>>> out = track(tpl, {ConfigRef("ConfigMap", "settings"): "3f2a1b9c0d77"})
>>> out.template["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
'settings-3f2a1b9c0d'
>>> [(c.kind, c.source, c.name) for c in out.copies]
[('ConfigMap', 'settings', 'settings-3f2a1b9c0d')]
>>> track(tpl, {ConfigRef("ConfigMap", "settings"): None}).problem
'ConfigMap settings (spec.template.spec.containers[0].envFrom[0].configMapRef) not found'
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CONFIG_ANNOTATION = "ramp.dev/config"
"""On the rewritten pod template (and so on the pods): which copy each referenced object
is read from, as JSON ``{"ConfigMap/settings": "settings-3f2a1b9c0d", ...}``."""
COPY_LABEL = "ramp.dev/config-copy"
"""On every copy: ``true`` (the shell's selector for the copies it made)."""
SOURCE_ANNOTATION = "ramp.dev/config-source"
"""On every copy: the name of the object it copies."""
DIGEST = 10
"""Characters of the data digest in a copy's name."""
MAX_NAME = 253
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, order=True)
class ConfigRef:
    """A referenced object: ``ConfigMap`` or ``Secret``, by name (in the Rollout's
    namespace)."""

    kind: str
    name: str


@dataclass(frozen=True)
class Reference:
    """One place in the pod template that names a ConfigMap or a Secret."""

    ref: ConfigRef
    path: str
    """Where, e.g. ``spec.template.spec.volumes[0].configMap``."""
    optional: bool
    holder: dict[str, Any]
    """The dict holding the name (inside the template it was found in)."""
    key: str
    """The name's key in ``holder`` (``name`` or ``secretName``)."""


@dataclass(frozen=True)
class ConfigCopy:
    """An immutable copy to make of ``source`` for the data whose digest is ``digest``."""

    kind: str
    source: str
    name: str
    digest: str


@dataclass(frozen=True)
class Tracked:
    """The template to plan with, and the copies it needs."""

    template: dict[str, Any]
    copies: tuple[ConfigCopy, ...] = ()
    problem: str | None = None
    """A referenced object that is missing: the template is returned as written."""


def _named(holder: Any, key: str) -> str | None:
    if isinstance(holder, dict) and isinstance(holder.get(key), str) and holder[key]:
        return str(holder[key])
    return None


def _places(pod: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, str]]:
    """(kind, path, holder, key) of every ConfigMap/Secret reference of a pod spec."""
    base = "spec.template.spec"
    for i, volume in enumerate(pod.get("volumes") or []):
        if not isinstance(volume, dict):
            continue
        yield "ConfigMap", f"{base}.volumes[{i}].configMap", volume.get("configMap"), "name"
        yield "Secret", f"{base}.volumes[{i}].secret", volume.get("secret"), "secretName"
        sources = (volume.get("projected") or {}).get("sources") or []
        for j, source in enumerate(sources if isinstance(sources, list) else []):
            if not isinstance(source, dict):
                continue
            at = f"{base}.volumes[{i}].projected.sources[{j}]"
            yield "ConfigMap", f"{at}.configMap", source.get("configMap"), "name"
            yield "Secret", f"{at}.secret", source.get("secret"), "name"
    for kind_list in CONTAINER_LISTS:
        for i, container in enumerate(pod.get(kind_list) or []):
            if not isinstance(container, dict):
                continue
            at = f"{base}.{kind_list}[{i}]"
            for j, env in enumerate(container.get("env") or []):
                source = (env or {}).get("valueFrom") or {}
                path = f"{at}.env[{j}].valueFrom"
                yield "ConfigMap", f"{path}.configMapKeyRef", source.get("configMapKeyRef"), "name"
                yield "Secret", f"{path}.secretKeyRef", source.get("secretKeyRef"), "name"
            for j, env_from in enumerate(container.get("envFrom") or []):
                env_from = env_from or {}
                path = f"{at}.envFrom[{j}]"
                yield "ConfigMap", f"{path}.configMapRef", env_from.get("configMapRef"), "name"
                yield "Secret", f"{path}.secretRef", env_from.get("secretRef"), "name"


def references(template: Mapping[str, Any]) -> list[Reference]:
    """Every ConfigMap and Secret reference of a pod template, in template order."""
    pod = template.get("spec") or {}
    out = []
    for kind, path, holder, key in _places(pod if isinstance(pod, dict) else {}):
        name = _named(holder, key)
        if name is not None:
            optional = bool(holder.get("optional"))
            out.append(Reference(ConfigRef(kind, name), path, optional, holder, key))
    return out


def referenced(template: Mapping[str, Any]) -> list[ConfigRef]:
    """The objects to observe for ``template`` (each once, sorted)."""
    return sorted({r.ref for r in references(template)})


def copy_name(source: str, digest: str) -> str:
    """``<source>-<digest>``, the source's name cut (and hashed) when the whole would
    pass 253 characters.

    >>> copy_name("settings", "3f2a1b9c0d77")
    'settings-3f2a1b9c0d'
    >>> len(copy_name("a" * 253, "3f2a1b9c0d77"))
    253
    """
    short = digest[:DIGEST]
    name = f"{source}-{short}"
    if len(name) <= MAX_NAME:
        return name
    tag = hashlib.sha256(source.encode()).hexdigest()[:DIGEST]
    keep = MAX_NAME - len(short) - len(tag) - 2
    return f"{source[:keep].rstrip('.-')}-{tag}-{short}"


def data_digest(data: Mapping[str, Any], key: str = "") -> str:
    """The digest of an object's data (``key``: something secret to mix in, e.g. a
    Secret's uid). Only the shell has the data; the core sees this digest."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{key}\0{canonical}".encode()).hexdigest()


def track(template: Mapping[str, Any], observed: Mapping[ConfigRef, str | None]) -> Tracked:
    """The template rewritten to the copies of what it references, given each referenced
    object's digest (None, or absent from ``observed``: not found).

    A missing object that a reference does not mark ``optional`` is a problem naming
    it, and the template is returned as written with no copies (nothing changes); an
    optional one that is missing is left as written (there is nothing to copy)."""
    written = copy.deepcopy(dict(template))
    found = references(written)
    for r in found:
        if observed.get(r.ref) is None and not r.optional:
            return Tracked(
                template=dict(template),
                problem=f"{r.ref.kind} {r.ref.name} ({r.path}) not found",
            )
    copies: dict[ConfigRef, ConfigCopy] = {}
    for r in found:
        digest = observed.get(r.ref)
        if digest is None:
            continue  # optional and missing
        made = copies.setdefault(
            r.ref, ConfigCopy(r.ref.kind, r.ref.name, copy_name(r.ref.name, digest), digest)
        )
        r.holder[r.key] = made.name
    if copies:
        metadata = written.setdefault("metadata", {})
        annotations = dict(metadata.get("annotations") or {})
        annotations[CONFIG_ANNOTATION] = json.dumps(
            {f"{c.kind}/{c.source}": c.name for _, c in sorted(copies.items())},
            sort_keys=True,
            separators=(",", ":"),
        )
        metadata["annotations"] = annotations
    return Tracked(template=written, copies=tuple(c for _, c in sorted(copies.items())))


def config_of(template: Mapping[str, Any]) -> dict[str, str]:
    """Which copy each referenced object is read from (``{"ConfigMap/settings":
    "settings-3f2a1b9c0d"}``), from a rewritten template's annotation; {} when none."""
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(CONFIG_ANNOTATION)
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def describe_config(template: Mapping[str, Any] | None) -> str:
    """What a revision's pods read, for people: ``ConfigMap settings-3f2a1b9c0d, Secret
    db-77aa01b2c3`` (the copies; each name is the source's and a digest); ``""`` when
    the template tracks nothing."""
    copies = config_of(template or {})
    return ", ".join(f"{key.split('/', 1)[0]} {name}" for key, name in sorted(copies.items()))


__all__ = [
    "CONFIG_ANNOTATION",
    "COPY_LABEL",
    "SOURCE_ANNOTATION",
    "ConfigCopy",
    "ConfigRef",
    "Reference",
    "Tracked",
    "config_of",
    "copy_name",
    "data_digest",
    "describe_config",
    "referenced",
    "references",
    "track",
]
