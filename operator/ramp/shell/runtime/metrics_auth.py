"""Who may read ``/metrics``: a bearer token, authenticated and authorized by the API server.

The operator's series name every tenant's Rollouts, phases and abort reasons, so ``/metrics``
answers only a caller the cluster's RBAC allows, the way Kubernetes' own components (and
controller-runtime's ``WithAuthenticationAndAuthorization`` filter) do:

1. ``Authorization: Bearer TOKEN`` is required (401 without it);
2. a ``TokenReview`` says whose token it is (401 when nobody's);
3. a ``SubjectAccessReview`` asks whether that user may ``get`` the non-resource URL
   ``/metrics`` (403 when not). Prometheus' usual ClusterRole already grants it
   (``nonResourceURLs: ["/metrics"], verbs: ["get"]``).

Answers are cached for :data:`CACHE_SECONDS` per token (by its SHA-256, never the token
itself), so a scrape every few seconds costs two API requests every
:data:`CACHE_SECONDS` at most. When the API server cannot answer, the scrape gets 503 and
nothing is cached. The probes (``/healthz``, ``/readyz``) are on a port of their own with
no authentication: they say nothing about tenants.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("ramp.metrics_auth")  # its name before the shell package

CACHE_SECONDS = 10.0
CACHE_ENTRIES = 256


@dataclass(frozen=True)
class Decision:
    """The answer to one request: an HTTP status (200, 401, 403, 503) and why."""

    status: int
    reason: str
    user: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 200


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (None when there is none).

    >>> bearer_token("Bearer abc"), bearer_token("Basic abc"), bearer_token(None)
    ('abc', None, None)
    """
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KubeReviewer:
    """TokenReview and SubjectAccessReview through the Kubernetes client (blocking calls,
    run in a thread by :class:`MetricsAuth`)."""

    def __init__(self, api_client: Any, timeout: float = 5.0) -> None:
        from kubernetes import client

        self.authn: Any = client.AuthenticationV1Api(api_client)
        self.authz: Any = client.AuthorizationV1Api(api_client)
        self.timeout = timeout

    def authenticate(self, token: str) -> dict[str, Any] | None:
        """The user of ``token`` (username, uid, groups, extra), or None."""
        review = self.authn.create_token_review(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
            _request_timeout=self.timeout,
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        user = status.user
        return {
            "user": user.username or "",
            "uid": user.uid,
            "groups": list(user.groups or []),
            "extra": {k: list(v) for k, v in (user.extra or {}).items()},
        }

    def authorize(self, user: dict[str, Any], path: str, verb: str = "get") -> bool:
        """Whether ``user`` may ``verb`` the non-resource URL ``path``."""
        spec = {**user, "nonResourceAttributes": {"path": path, "verb": verb}}
        review = self.authz.create_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {k: v for k, v in spec.items() if v not in (None, [], {})},
            },
            _request_timeout=self.timeout,
        )
        return bool(review.status is not None and review.status.allowed)


class MetricsAuth:
    """The decision for a request's ``Authorization`` header and path, cached per token."""

    def __init__(
        self,
        reviewer: Any,
        ttl: float = CACHE_SECONDS,
        entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reviewer = reviewer
        self.ttl = ttl
        self.entries = entries
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, Decision]] = OrderedDict()
        self.reviews = 0
        """TokenReviews sent (for tests and the curious)."""

    async def decide(self, header: str | None, path: str) -> Decision:
        token = bearer_token(header)
        if token is None:
            return Decision(401, "a bearer token is required (Authorization: Bearer TOKEN)")
        key = (hashlib.sha256(token.encode()).hexdigest(), path)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            decision = await asyncio.to_thread(self._review, token, path)
        except Exception as exc:  # the API server is away, or we may not ask it
            log.warning("metrics: cannot review a token: %s", _short(exc))
            return Decision(503, "the API server could not review the token")
        self._cache[key] = (now + self.ttl, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > self.entries:
            self._cache.popitem(last=False)
        return decision

    def _review(self, token: str, path: str) -> Decision:
        self.reviews += 1
        user = self.reviewer.authenticate(token)
        if user is None:
            return Decision(401, "the token is not valid")
        name = str(user.get("user", ""))
        if not self.reviewer.authorize(user, path):
            return Decision(403, f'user "{name}" may not get {path}', name)
        return Decision(200, "ok", name)


def _short(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    return f"HTTP {status} {reason}" if status else type(exc).__name__


__all__ = ["Decision", "KubeReviewer", "MetricsAuth", "bearer_token"]
