"""Strings from the API shown as text: never as Rich markup, never as terminal controls.

A Rollout's messages, conditions, Event messages, measurement values and names are written
by whoever can write the Rollout (or make its metric answer): a namespace owner, not the
admin who runs ``kubectl ramp``. Shown raw, ``\\x1b]52;c;...\\x07`` (OSC 52) rewrites the
admin's clipboard, ``\\x1b[2J`` clears the screen, a CR or a newline forges an output line,
a bidi override reorders what is read, and ``[/bold]`` is Rich markup (it used to crash the
command). Here:

* :func:`visible` replaces every control or invisible formatting character with a visible
  escape (``\\x1b``, ``\\n``, ``\\u202e``); printable text, including non-ASCII letters, is
  unchanged.
* :func:`visible_obj` does that to every string of an API object (a copy, for display).
* :class:`SafeConsole` is the Console every mode prints through: markup, emoji codes and
  highlighting off, and, as a last guard, every text segment passed through
  :func:`visible` (newlines kept) just before it is written; Rich's own style and cursor
  codes are control segments and pass untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

_INVISIBLE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1 (0x9b is CSI on 8-bit terminals)
    "\xad\u061c\u180e"  # soft hyphen, Arabic letter mark, Mongolian vowel separator
    "\u200b-\u200f"  # zero-width space/joiners, LRM, RLM
    "\u2028-\u202e"  # line/paragraph separators, bidi embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidi isolates
    "\ufeff\ufff9-\ufffb"  # BOM, interlinear annotations
    "\ud800-\udfff"  # lone surrogates (they cannot even be encoded)
    "\U000e0000-\U000e007f"  # tag characters ("ASCII smuggling")
    "]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: Any, keep_newlines: bool = False) -> str:
    """``text`` with each control or invisible formatting character written as an escape.

    >>> visible("ok\\x1b]52;c;aGk=\\x07 [/bold]")
    'ok\\\\x1b]52;c;aGk=\\\\x07 [/bold]'
    >>> visible("line\\nnext"), visible("a\\u202eb")
    ('line\\\\nnext', 'a\\\\u202eb')
    """
    text = text if isinstance(text, str) else str(text)
    if keep_newlines:
        return "\n".join(_INVISIBLE.sub(_escape, line) for line in text.split("\n"))
    return _INVISIBLE.sub(_escape, text)


def visible_obj(obj: Any) -> Any:
    """A copy of an API object (dicts, lists, scalars) with every string :func:`visible`."""
    if isinstance(obj, str):
        return visible(obj)
    if isinstance(obj, Mapping):
        return {visible(k) if isinstance(k, str) else k: visible_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [visible_obj(v) for v in obj]
    return obj


def visible_all(objs: Iterable[Any]) -> list[Any]:
    return [visible_obj(o) for o in objs]


class SafeConsole(Console):
    """A Rich Console for strings that are data: no markup, no emoji codes, no highlighting,
    and no control character of the data reaches the terminal (see the module's doc)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """A string renderable: its control characters shown (before Rich strips some)."""
        kwargs["markup"] = False
        return super().render_str(visible(text, keep_newlines=True), **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment
            if segment.control
            else Segment(visible(segment.text, keep_newlines=True), segment.style)
            for segment in buffer
        )


__all__ = ["SafeConsole", "visible", "visible_all", "visible_obj"]
