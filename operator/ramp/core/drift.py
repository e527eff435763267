"""Template drift: is a child Deployment's pod template still its revision's? Pure.

Ramp never changes a child's pod template (promotion only scales), so a template that
differs from the one its revision was made from was edited by someone else
(``kubectl set image deploy/<child>``, ``kubectl edit``): the child then serves pods that
are not the revision the Rollout reports, and were never proven. The comparison is
semantic, because the API server adds defaults to what Ramp sent (``imagePullPolicy``,
``terminationMessagePath``, a port's ``protocol`` ...) and canonicalises quantities:

* every field of the revision's template (as written, plus the revision label) must be
  there with the same value (lists item by item, quantities by amount);
* a field only the stored template has is a default, unless it is one the API server
  never defaults (an image, a command, environment, volumes, resources, labels...):
  then someone added it.

>>> written = {"metadata": {"labels": {"app": "a"}},
...            "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
>>> revision = revision_hash(written)
>>> stored = {"metadata": {"labels": {"app": "a", "ramp.dev/revision": revision}},
...           "spec": {"containers": [{"name": "c", "image": "x:1",
...                    "imagePullPolicy": "IfNotPresent", "resources": {}}],
...                    "restartPolicy": "Always"}}
>>> template_drift(written, stored, revision) is None
True
>>> stored["spec"]["containers"][0]["image"] = "x:2"
>>> template_drift(written, stored, revision)
'spec.containers[0].image differs from the revision'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ramp.api.labels import REVISION_LABEL, revision_hash

NEVER_DEFAULTED = frozenset(
    {
        "image",
        "command",
        "args",
        "env",
        "envFrom",
        "volumeMounts",
        "volumes",
        "containers",
        "initContainers",
        "nodeSelector",
        "tolerations",
        "affinity",
        "limits",
        "requests",
        "labels",
        "serviceAccountName",
        "hostNetwork",
        "runtimeClassName",
    }
)
"""Fields the API server never fills in: present only in the stored template, someone
added them."""

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$")
_SCALE = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
}


def _amount(value: Any) -> Decimal | None:
    """A resource quantity's amount ("500m" and "0.5" are the same), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    match = _QUANTITY.match(str(value))
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _SCALE[match.group(2)]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def _differs(want: Any, have: Any, path: str) -> str | None:
    """The path of the first difference between the written ``want`` and the stored
    ``have`` (defaults the API server added are no difference), or None."""
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return path or "the template"
        for key, value in want.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in have:
                if _empty(value):
                    continue
                return sub
            found = _differs(value, have[key], sub)
            if found is not None:
                return found
        for key, value in have.items():
            if key not in want and key in NEVER_DEFAULTED and not _empty(value):
                return f"{path}.{key}" if path else str(key)
        return None
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return path
        for i, (a, b) in enumerate(zip(want, have, strict=True)):
            found = _differs(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if want == have:
        return None
    if ".resources." in f"{path}." and _amount(want) is not None and _amount(want) == _amount(have):
        return None
    return path


def template_drift(
    written: Mapping[str, Any] | None, stored: Mapping[str, Any] | None, revision: str
) -> str | None:
    """Why a child's stored pod template is not its revision's, or None when it is.

    ``written``: the template the child recorded as written (``ramp.dev/template``);
    ``stored``: the Deployment's ``spec.template``; ``revision``: its revision label."""
    if written is None:
        return "it records no template of its revision"
    if revision_hash(written) != revision:
        return f"the template it records is not revision {revision}'s"
    labels = {**((written.get("metadata") or {}).get("labels") or {}), REVISION_LABEL: revision}
    want = {**written, "metadata": {**(written.get("metadata") or {}), "labels": labels}}
    path = _differs(want, stored or {}, "")
    return None if path is None else f"{path} differs from the revision"
