"""undo restores a revision's template from the operator's record on its Deployment."""

from __future__ import annotations

import json

from ramp.api.labels import TEMPLATE_ANNOTATION, revision_hash
from ramp.cli.templates import recorded_template

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "web:1", "resources": {}}]},
}


def deployment(annotation: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"name": "web-x"}
    if annotation is not None:
        meta["annotations"] = {TEMPLATE_ANNOTATION: annotation}
    return {"metadata": meta}


def test_recorded_template_is_returned_when_its_hash_is_the_revision() -> None:
    rev = revision_hash(TEMPLATE)
    got = recorded_template(deployment(json.dumps(TEMPLATE)), rev)
    assert got == TEMPLATE
    # Even fields that equal API defaults (resources: {}) survive: the record is exact.
    assert got is not None and got["spec"]["containers"][0]["resources"] == {}


def test_recorded_template_is_ignored_when_absent_malformed_or_of_another_revision() -> None:
    rev = revision_hash(TEMPLATE)
    assert recorded_template(deployment(None), rev) is None
    assert recorded_template(deployment("{not json"), rev) is None
    assert recorded_template(deployment(json.dumps(TEMPLATE)), "0000000000") is None
