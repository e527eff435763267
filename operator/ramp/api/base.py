"""Shared base for the API models: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every Ramp API model.

    Fields are snake_case in Python and camelCase in the Kubernetes object; unknown
    fields are rejected so that a typo is an error, not a silently ignored setting.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
    )

    def to_k8s(self) -> dict[str, object]:
        """The object as the API server stores it: camelCase keys, no unset fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
