"""Run Ramp's Argo CD Lua the way Argo CD does: in gopher-lua, the Go engine Argo CD
embeds (tests/gopherlua, ``gopher_*``), and as a quick cross-check in PUC Lua 5.1 (lupa's
``lua51``: ``health``, ``discovery``, ``action``).

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

from ramp.api.verbs import NAMES

ARGOCD = REPO / "argocd"
VERBS = NAMES


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


# -- gopher-lua: the engine Argo CD embeds (tests/gopherlua, built by `make argocd-lua`) -----

GOPHER = REPO / "tests" / "gopherlua" / "bin" / "argocd-lua"
HEALTH_CODES = ("Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing")


def gopher_outcomes(jobs: list[tuple[Path | str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run each (script file or source, obj) in a fresh gopher-lua state in Argo CD's
    sandbox: ``{"result": ...}`` (the returned table as gopher-json encodes it: an empty
    table is ``[]``) or ``{"error": message}``, one per job."""
    import json

    assert GOPHER.is_file(), f"{GOPHER} is missing: run `make argocd-lua`"
    payload = [
        {"script": s.read_text() if isinstance(s, Path) else s, "obj": obj} for s, obj in jobs
    ]
    proc = subprocess.run(
        [str(GOPHER)], input=json.dumps(payload), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    outs: list[dict[str, Any]] = json.loads(proc.stdout)
    return outs


def gopher_raw(jobs: list[tuple[Path | str, dict[str, Any]]]) -> list[Any]:
    """The results of :func:`gopher_outcomes`; a Lua error fails with its message."""
    outs = gopher_outcomes(jobs)
    errors = [
        (str(s)[:80], o["error"]) for (s, _), o in zip(jobs, outs, strict=True) if "error" in o
    ]
    assert not errors, f"gopher-lua errors: {errors}"
    return [o["result"] for o in outs]


def run_source(source: str, obj: dict[str, Any]) -> Any:
    """Lua source (not a file) in the lupa sandbox."""
    lua = _runtime()
    lua.globals().obj = to_lua(lua, copy.deepcopy(obj))
    return from_lua(lua.execute(source), obj)


def argocd_clean(new: Any, old: Any) -> Any:
    """What Argo CD does to an action's result before patching: gopher-json cannot tell an
    empty table from an empty array, so where the live object had a map and the result has
    an empty array, the live map is put back (recursively through maps and arrays)."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = dict(new)
        for key, value in new.items():
            if key not in old:
                continue
            before = old[key]
            if isinstance(value, list) and isinstance(before, dict) and not value:
                out[key] = before
            else:
                out[key] = argocd_clean(value, before)
        return out
    if isinstance(new, list) and isinstance(old, list):
        return [argocd_clean(v, old[i]) if i < len(old) else v for i, v in enumerate(new)]
    return new


def gopher_health(obj: dict[str, Any]) -> dict[str, Any]:
    """The health Argo CD shows: an unknown status code becomes Unknown."""
    (result,) = gopher_raw([(ARGOCD / "health.lua", obj)])
    assert isinstance(result, dict), result
    if result.get("status") not in HEALTH_CODES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return result


def gopher_discovery(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (result,) = gopher_raw([(ARGOCD / "actions" / "discovery.lua", obj)])
    if result == []:
        return {}
    return {name: (spec if isinstance(spec, dict) else {}) for name, spec in result.items()}


def gopher_action(verb: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object an action returns, after Argo CD's empty-table clean-up."""
    (result,) = gopher_raw([(ARGOCD / "actions" / verb / "action.lua", obj)])
    assert isinstance(result, dict), f"{verb} returned {result!r}"
    cleaned: dict[str, Any] = argocd_clean(result, obj)
    return cleaned
