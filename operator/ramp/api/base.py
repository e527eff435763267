"""Shared base for the API models: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Any

import annotated_types
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

    def clip_strings(self) -> None:
        """Cut every string longer than its field's ``max_length`` in bytes (ending in "…"),
        here and in nested models: a status the operator writes stays inside the CRD's schema (a
        long analysis message must not get the whole status patch refused with a 422)."""
        for name, limit in _string_limits(type(self)).items():
            value = getattr(self, name)
            if isinstance(value, ApiModel):
                value.clip_strings()
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ApiModel):
                        item.clip_strings()
            elif isinstance(value, str) and limit is not None and len(value.encode()) > limit:
                setattr(self, name, clip(value, limit))


_LIMITS: dict[type[ApiModel], dict[str, int | None]] = {}


def _string_limits(cls: type[ApiModel]) -> dict[str, int | None]:
    """Each field of a model class with its ``max_length`` (None: none), worked out once
    per class: walking the fields' metadata was most of what clipping cost on every plan."""
    found = _LIMITS.get(cls)
    if found is None:
        found = {
            name: next(
                (m.max_length for m in info.metadata if isinstance(m, annotated_types.MaxLen)),
                None,
            )
            for name, info in cls.model_fields.items()
        }
        _LIMITS[cls] = found
    return found


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, ending in "…" when cut (the API
    server counts a string's length in bytes for some fields)."""
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: max(0, limit - 3)].decode(errors="ignore")
    return cut + "…"


def cel_rules(*rules: tuple[str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for a model or field: (CEL rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}
