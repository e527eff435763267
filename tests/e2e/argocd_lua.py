"""Run Ramp's Argo CD Lua the way Argo CD does, with real Lua 5.1 (lupa's ``lua51``).

Argo CD runs health checks and actions in gopher-lua (Lua 5.1 semantics) with only the
base library, ``table``, and a "safe" ``os`` (``time`` and ``date``); the object is the
global ``obj`` (JSON turned into tables, arrays 1-indexed) and the script's return value
is the result. An action returns the modified object; Argo CD turns it back into JSON
(restoring empty objects that Lua cannot tell from empty arrays, from the original) and
sends the JSON merge patch between the live object and the result.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from ramp_e2e import REPO

ARGOCD = REPO / "argocd"
VERBS = ("promote", "promote-full", "abort", "retry", "pause", "resume")


def _runtime() -> Any:
    try:
        import lupa.lua51 as lua51
    except ImportError as exc:  # pragma: no cover - lupa ships lua51 on the platforms we use
        raise AssertionError(
            "lupa with its lua51 module is needed (the dev extra installs lupa)"
        ) from exc
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    assert lua.eval("_VERSION") == "Lua 5.1"
    # Argo CD's sandbox: base + table + os.time/os.date. No string, math, io, debug,
    # package loaders or file access; strings have no methods.
    lua.execute(
        """
        local time, date, setmeta = os.time, os.date, debug.setmetatable
        setmeta("", nil)
        string, math, io, debug, package, require = nil, nil, nil, nil, nil, nil
        dofile, loadfile, load, loadstring, module = nil, nil, nil, nil, nil
        os = {time = time, date = date}
        """
    )
    return lua


def to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def from_lua(value: Any, original: Any = None) -> Any:
    """A Lua result as JSON-like Python; an empty table takes the original's kind."""
    if hasattr(value, "items") and hasattr(value, "keys"):
        items = dict(value.items())
        if not items:
            return [] if isinstance(original, list) else {}
        keys = list(items)
        if all(isinstance(k, int) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
            orig = original if isinstance(original, list) else []
            return [
                from_lua(items[i + 1], orig[i] if i < len(orig) else None) for i in range(len(keys))
            ]
        orig_map = original if isinstance(original, dict) else {}
        return {str(k): from_lua(v, orig_map.get(str(k))) for k, v in items.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run(script: Path, obj: dict[str, Any]) -> Any:
    """Run one Lua file over ``obj`` in a fresh sandbox; returns its result as Python."""
    lua = _runtime()
    lua.globals().obj = to_lua(lua, copy.deepcopy(obj))
    return from_lua(lua.execute(script.read_text()), obj)


def health(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run(ARGOCD / "health.lua", obj)
    return result


def discovery(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = run(ARGOCD / "actions" / "discovery.lua", obj)
    return result


def action(verb: str, obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run(ARGOCD / "actions" / verb / "action.lua", obj)
    return result


def merge_patch(original: Any, modified: Any) -> Any:
    """RFC 7386 JSON merge patch turning ``original`` into ``modified``."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return modified
    patch: dict[str, Any] = {k: None for k in original if k not in modified}
    for key, value in modified.items():
        if key not in original:
            patch[key] = value
        elif original[key] != value:
            patch[key] = merge_patch(original[key], value)
    return patch


def render_check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ARGOCD / "render.py"), "--check"], capture_output=True, text=True
    )
