"""Gateway API routing of a Rollout: the HTTPRoutes it names, the ``setHeaderRoute`` step,
and what the status says of the routes (docs/gateway-api.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ramp.api.base import ApiModel

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$"
"""An HTTP header name (RFC 7230 token), as Gateway API's ``HTTPHeaderName``."""

HTTPRoutes = list[str]


def http_routes_field() -> Any:
    """``httpRoutes`` of a strategy: HTTPRoutes of the Rollout's namespace."""
    return Field(
        default=None,
        max_length=8,
        json_schema_extra={
            "items": {"type": "string", "pattern": _NAME, "maxLength": 253},
            "x-kubernetes-list-type": "set",
        },
    )


class StringMatch(ApiModel):
    """How a header's value matches: exactly one of ``exact``, ``prefix``, ``regex``."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.exact), has(self.prefix), has(self.regex)]"
                    ".filter(x, x).size() == 1",
                    "message": "a header value has exactly one of exact, prefix or regex",
                }
            ]
        }
    }

    exact: str | None = Field(default=None, max_length=4096)
    prefix: str | None = Field(default=None, max_length=4096)
    regex: str | None = Field(default=None, max_length=1024)


class HeaderRouteMatch(ApiModel):
    """One header condition of a header route."""

    header_name: str = Field(pattern=HEADER_NAME, max_length=256)
    header_value: StringMatch


class SetHeaderRouteStep(ApiModel):
    """Send the requests that match every header of ``match`` to the canary, whatever the
    weight (a rule Ramp adds to each HTTPRoute and removes at promotion and abort); a
    ``setHeaderRoute`` of the same ``name`` with no ``match`` removes it."""

    name: str = Field(pattern=_NAME, max_length=63)
    match: list[HeaderRouteMatch] | None = Field(default=None, max_length=16)


class RouteStatus(ApiModel):
    """What Ramp wants of one HTTPRoute and what its gateway acknowledged."""

    name: str = Field(max_length=253)
    desired: int | None = Field(default=None, ge=0, le=100)
    """The canary's percent of requests Ramp wrote (blue-green: the green's)."""
    acknowledged: int | None = Field(default=None, ge=0, le=100)
    """The canary's percent the gateway accepted (the route's generation accepted with
    its references resolved); absent while it never did."""
    revisions: dict[str, int] | None = Field(default=None, json_schema_extra={"maxProperties": 8})
    """Per revision, the percent of requests the gateway acknowledged it gets (what keeps
    its pods while a new generation of the route is not acknowledged yet)."""
    previous: dict[str, int] | None = Field(default=None, json_schema_extra={"maxProperties": 8})
    """The shares acknowledged before the last change, still counted for a moment after
    it (a gateway reports a generation accepted a moment before its proxy switches)."""
    pending: dict[str, int] | None = Field(default=None, json_schema_extra={"maxProperties": 8})
    """Per revision, the largest share of the route's generations since the last one the
    gateway acknowledged (it may proxy any of them until it acknowledges the current one)."""
    headers: list[str] | None = Field(default=None, max_length=8)
    """Revisions a header route of Ramp's sends requests to, kept until its removal is
    acknowledged (their pods stay meanwhile)."""
    acknowledged_at: str | None = Field(default=None, max_length=32)
    """When the gateway acknowledged the current shares."""
    message: str | None = Field(default=None, max_length=1024)
    """Why the desired weight is not acknowledged yet (empty when it is)."""
    conflicts: int | None = Field(default=None, ge=0)
    """How many times someone else (a GitOps tool) set the weights back while Ramp held
    them; Ramp then leaves them alone for a back-off before it writes them once more."""
    conflict_at: str | None = Field(default=None, max_length=32)
    """When the last such reset was seen."""
    written: int | None = Field(default=None, ge=0)
    """The route's generation when Ramp last wrote its weights (a newer generation beyond
    Ramp's own write without them: someone set them back)."""
