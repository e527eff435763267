"""Names and label values Ramp derives from a Rollout's name: valid for every name the API
server accepts for a Rollout (a DNS-1123 subdomain of up to 253 characters).

Like Kubernetes' own derived names (a ReplicaSet's ``pod-template-hash``, Helm's
63-character helpers), a derived name that would not fit is cut and made unique again
with a hash of what was cut. Children are recognised by owner reference and labels,
never by a name prefix (the API server truncates generated pod names at 58 characters).
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL_VALUE = 63
MAX_NAME = 253
MAX_CHILD_NAME = MAX_NAME - 11
"""A child Deployment's ReplicaSets are named ``<deployment>-<pod-template-hash>`` (up to
10 characters of hash): the Deployment's name leaves room for them."""
_HASH = 10

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH]


def _cut(text: str, size: int) -> str:
    """``text`` cut to ``size`` characters, without a trailing ``.`` or ``-`` (a DNS
    label must end with a letter or digit)."""
    return text[:size].rstrip(".-")


def rollout_label(name: str) -> str:
    """The ``ramp.dev/rollout`` label value of a Rollout's children and history: its name
    when it fits a label value, else its first 52 characters and a hash of the whole.

    >>> rollout_label("web")
    'web'
    >>> len(rollout_label("a" * 253))
    63
    """
    if len(name) <= MAX_LABEL_VALUE:
        return name
    return f"{_cut(name, MAX_LABEL_VALUE - _HASH - 1)}-{_digest(name)}"


def child_name(rollout: str, revision: str) -> str:
    """The name of a revision's Deployment and ControllerRevision: ``<rollout>-<hash>``,
    the Rollout's name cut (and hashed) when the whole would pass :data:`MAX_CHILD_NAME`.

    >>> child_name("web", "5fd2c6b0bc")
    'web-5fd2c6b0bc'
    >>> len(child_name("a" * 253, "5fd2c6b0bc"))
    242
    """
    name = f"{rollout}-{revision}"
    if len(name) <= MAX_CHILD_NAME:
        return name
    keep = MAX_CHILD_NAME - len(revision) - _HASH - 2
    return f"{_cut(rollout, keep)}-{_digest(rollout)}-{revision}"


def event_name(rollout: str, unique: str) -> str:
    """An Event's name about a Rollout: ``<rollout>.<unique>``, the Rollout's name cut to
    leave room for ``unique``.

    >>> len(event_name("a" * 253, "0123456789ab"))
    253
    """
    return f"{_cut(rollout, MAX_NAME - len(unique) - 1)}.{unique}"


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value (None when it is)."""
    if len(value) > MAX_LABEL_VALUE:
        return f"{len(value)} characters (at most {MAX_LABEL_VALUE})"
    if not LABEL_VALUE.match(value):
        return "not a label value (letters, digits, '-', '_', '.'; alphanumeric at both ends)"
    return None


def name_problem(name: str, limit: int = MAX_NAME) -> str | None:
    """Why ``name`` is not a valid object name (DNS-1123 subdomain); None when it is."""
    if not name or len(name) > limit:
        return f"{len(name)} characters (1 to {limit})"
    if not SUBDOMAIN.match(name):
        return "not a DNS-1123 subdomain"
    return None
