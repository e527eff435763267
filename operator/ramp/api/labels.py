"""The labels and annotations Ramp writes on the objects it owns, and a revision's name.

A leaf module (it imports nothing of Ramp): the API models, the core, the shell and the
CLI read the same keys from here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

PREFIX = "ramp.dev"
REVISION_LABEL = f"{PREFIX}/revision"
ROLLOUT_LABEL = f"{PREFIX}/rollout"
ROLE_LABEL = f"{PREFIX}/role"
TEMPLATE_ANNOTATION = f"{PREFIX}/template"
"""On each child Deployment: the Rollout's pod template exactly as written (JSON), so that
an undo can restore it byte for byte (the Deployment's own copy gets API defaults)."""
PROMOTED_ANNOTATION = f"{PREFIX}/promoted-at"
"""On a revision's ControllerRevision: when it became stable (the last one is stable)."""
ABORTED_ANNOTATION = f"{PREFIX}/aborted"
"""On a revision's ControllerRevision: why it was aborted (absent when not aborted)."""


def revision_hash(template: Mapping[str, Any]) -> str:
    """A short, stable hash of a pod template: the revision's name (``REVISION_LABEL``).

    Key order does not matter; any change of value does.

    >>> revision_hash({"spec": {"containers": [{"name": "a", "image": "x:1"}]}})
    '5fd2c6b0bc'
    """
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]
