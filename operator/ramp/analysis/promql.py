"""Render PromQL query templates without letting a substituted value change the query.

Placeholders are ``{{args.NAME}}``, ``{{rollout}}``, ``{{namespace}}``,
``{{canaryRevision}}``, ``{{stableRevision}}`` and, in compare queries, ``{{revision}}``
(spaces inside the braces are allowed). Every substituted value is treated as data:

* inside a double- or single-quoted string literal it is escaped for that literal (PromQL
  accepts ``\\\\``, the opening quote, ``\\n``-style and ``\\xNN`` escapes, and nothing
  else, so escaping depends on the quote character);
* inside a backtick (raw) string no escape exists: a value containing a backtick is
  refused;
* inside a ``#`` comment it is escaped like a double-quoted string (a newline would
  otherwise end the comment and start query text);
* outside any literal it must be a plain number, duration or identifier (``5m``,
  ``0.99``, ``http_requests_total``) that is not a PromQL keyword; anything else is refused.

So an argument like ``x"} or vector(0) #`` stays inside its string literal. The template
itself is scanned with a small lexer that knows PromQL's literals and comments; an
unknown placeholder is an error that names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

_BARE_VALUE = re.compile(
    r"^(?:[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # number
    r"|(?:[0-9]+(?:ms|s|m|h|d|w|y))+"  # duration
    r"|[A-Za-z_:][A-Za-z0-9_:]*)$"  # identifier (metric or label name)
)

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "atan2",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "start",
        "end",
        "inf",
        "nan",
    }
)

_SIMPLE_ESCAPES = {
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}


class QueryTemplateError(ValueError):
    """The query template cannot be rendered safely (unknown placeholder, unsafe value)."""


class _Context(StrEnum):
    CODE = "code"
    DOUBLE = "double-quoted string"
    SINGLE = "single-quoted string"
    RAW = "backtick string"
    COMMENT = "comment"


@dataclass(frozen=True)
class MeasurementId:
    """What identifies one measurement of a metric, and the Services a check is handed.

    The same on every operator that computes it (all from the Rollout and its status), so
    a restarted operator finds the Job, or sends the idempotency key, of the measurement
    it was taking."""

    uid: str
    """The Rollout's uid."""
    analysis: str
    """The analysis run (``step-0``, ``background``, ``prePromotion``...)."""
    started: str
    """When the run started (a retried run's measurements are new ones)."""
    attempt: int
    """1 for the run's first measurement of the metric, then 2, 3...: from the counters
    in the status."""
    services: Mapping[str, str] = field(default_factory=dict)
    """``canary``, ``stable``, ``active``, ``preview``: the Rollout's Service names."""


@dataclass(frozen=True)
class QueryContext:
    """The values a query template may refer to.

    ``args`` are the analysis arguments (template defaults overridden by the Rollout's
    values); ``revision`` is set only while rendering a compare query for one revision.
    """

    rollout: str
    namespace: str
    canary_revision: str | None = None
    stable_revision: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    revision: str | None = None
    run: MeasurementId | None = None
    """Who takes this measurement (set by the shell; the checks name their Job and their
    idempotency key from it). Not a placeholder."""

    def with_revision(self, revision: str | None) -> QueryContext:
        """The same context with ``{{revision}}`` bound to ``revision``."""
        return replace(self, revision=revision)

    def lookup(self, name: str) -> str:
        """The value of placeholder ``name``; QueryTemplateError naming it if unknown."""
        if name.startswith("args."):
            arg = name[len("args.") :]
            if arg in self.args:
                return self.args[arg]
            known = ", ".join(sorted(self.args)) or "none"
            raise QueryTemplateError(
                f"unknown placeholder {{{{{name}}}}}: no argument named {arg!r} "
                f"(arguments: {known})"
            )
        builtins: dict[str, str | None] = {
            "rollout": self.rollout,
            "namespace": self.namespace,
            "canaryRevision": self.canary_revision,
            "stableRevision": self.stable_revision,
            "revision": self.revision,
        }
        if name not in builtins:
            raise QueryTemplateError(
                f"unknown placeholder {{{{{name}}}}}: expected {{{{args.NAME}}}}, {{{{rollout}}}}, "
                "{{namespace}}, {{canaryRevision}}, {{stableRevision}} or {{revision}}"
            )
        value = builtins[name]
        if value is None:
            why = (
                "only compare queries have a {{revision}}"
                if name == "revision"
                else "the rollout has no such revision now"
            )
            raise QueryTemplateError(f"placeholder {{{{{name}}}}} has no value: {why}")
        return value


def escape_string_literal(value: str, quote: str = '"') -> str:
    """Escape ``value`` for the inside of a PromQL string literal opened with ``quote``.

    >>> escape_string_literal('x"} or vector(0) #')
    'x\\\\"} or vector(0) #'
    >>> escape_string_literal("it's", "'")
    "it\\\\'s"
    """
    if quote not in ('"', "'"):
        raise ValueError("quote must be ' or \"")
    out: list[str] = []
    for ch in value:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise QueryTemplateError(f"value {value!r} contains an unpaired surrogate")
        else:
            out.append(ch)
    return "".join(out)


def _substitute(name: str, value: str, context: _Context) -> str:
    if context is _Context.DOUBLE or context is _Context.COMMENT:
        return escape_string_literal(value, '"')
    if context is _Context.SINGLE:
        return escape_string_literal(value, "'")
    if context is _Context.RAW:
        if "`" in value:
            raise QueryTemplateError(
                f"the value of {{{{{name}}}}} contains a backtick, which cannot appear in the "
                "backtick string around it; use a double-quoted string in the query"
            )
        return value
    if not _BARE_VALUE.match(value) or value.lower() in _KEYWORDS:
        raise QueryTemplateError(
            f"the value {value!r} of {{{{{name}}}}} is not a plain number, duration or name; "
            "placeholders outside a string literal accept only those (put it in quotes)"
        )
    return value


def render(template: str, context: QueryContext) -> str:
    """Substitute the placeholders of ``template``, escaping each value for where it stands.

    Raises QueryTemplateError for an unknown placeholder, a placeholder without a value, a
    value that is unsafe where it stands, or an unterminated string literal.
    """
    out: list[str] = []
    state = _Context.CODE
    i = 0
    n = len(template)
    while i < n:
        match = _PLACEHOLDER.match(template, i) if template.startswith("{{", i) else None
        if match is not None:
            name = match.group(1)
            out.append(_substitute(name, context.lookup(name), state))
            i = match.end()
            continue
        ch = template[i]
        out.append(ch)
        i += 1
        if state is _Context.CODE:
            if ch == '"':
                state = _Context.DOUBLE
            elif ch == "'":
                state = _Context.SINGLE
            elif ch == "`":
                state = _Context.RAW
            elif ch == "#":
                state = _Context.COMMENT
        elif state is _Context.DOUBLE or state is _Context.SINGLE:
            closing = '"' if state is _Context.DOUBLE else "'"
            if ch == "\\" and i < n:
                out.append(template[i])  # the escaped character, never a closing quote
                i += 1
            elif ch == closing:
                state = _Context.CODE
            elif ch == "\n":
                raise QueryTemplateError("unterminated string literal in the query template")
        elif state is _Context.RAW:
            if ch == "`":
                state = _Context.CODE
        elif ch == "\n":  # end of a comment
            state = _Context.CODE
    if state in (_Context.DOUBLE, _Context.SINGLE, _Context.RAW):
        raise QueryTemplateError(f"unterminated {state} in the query template")
    return "".join(out)


def placeholders(template: str) -> list[str]:
    """The placeholder names used in ``template``, in order of appearance."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]
