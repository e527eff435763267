"""Write argocd-cm.yaml (the ``resource.customizations`` for Ramp) from the Lua files.

    python argocd/render.py          # rewrite argocd/argocd-cm.yaml
    python argocd/render.py --check  # exit 1 when it is out of date (tests do this)

The Lua files are the source; the ConfigMap snippet embeds them verbatim. The verbs come
from the verb table (``operator/ramp/api/verbs.py``): the action lines of
``actions/discovery.lua`` (between its generated markers) and the ``action.lua`` of every
token verb are written from it; a verb that changes the spec keeps a hand-written
``action.lua``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "operator"))

from ramp.api.verbs import VERBS, Verb  # noqa: E402

OUT = HERE / "argocd-cm.yaml"
KEY = "ramp.dev_Rollout"
BEGIN = "-- The actions (generated from operator/ramp/api/verbs.py by argocd/render.py):\n"
END = "return actions\n"
TOKEN_ACTION = """\
-- Argo CD action "{name}" on a Ramp Rollout: {summary}.
-- A one-shot request: the operator acts once per token of the annotation {annotation}
-- and records the token in status.handledTokens, so a repeated sync or a second click with
-- the same token does nothing more. Generated from operator/ramp/api/verbs.py by
-- argocd/render.py.
local now = 0
if os ~= nil and os.time ~= nil then
  now = os.time()
end
local token = "argocd-" .. tostring(now) .. "-" .. tostring(obj.metadata.resourceVersion or "0")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {{}}
end
obj.metadata.annotations["{annotation}"] = token
return obj
"""


def token_action(verb: Verb) -> str:
    return TOKEN_ACTION.format(name=verb.name, summary=verb.summary, annotation=verb.annotation)


def discovery(current: str) -> str:
    """``discovery.lua`` with its action lines written from the verb table."""
    head, sep, _ = current.partition(BEGIN)
    if not sep:
        raise SystemExit(f"actions/discovery.lua has no line {BEGIN.strip()!r}")
    lines = "".join(
        f'actions["{v.name}"] = {{["disabled"] = {v.disabled}, ["iconClass"] = "{v.icon}"}}\n'
        for v in VERBS
    )
    return head + BEGIN + lines + END


def generated() -> dict[Path, str]:
    """The Lua files written from the verb table, with their text."""
    path = HERE / "actions" / "discovery.lua"
    files = {path: discovery(path.read_text())}
    for verb in VERBS:
        if verb.token:
            files[HERE / "actions" / verb.name / "action.lua"] = token_action(verb)
    return files


def block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(True))


def render() -> str:
    health = (HERE / "health.lua").read_text()
    discovery = (HERE / "actions" / "discovery.lua").read_text()
    actions = "discovery.lua: |\n" + block(discovery, 2) + "definitions:\n"
    for verb in VERBS:
        script = (HERE / "actions" / verb.name / "action.lua").read_text()
        actions += f"  - name: {verb.name}\n    action.lua: |\n" + block(script, 6)
    return (
        "# Argo CD resource customizations for Ramp Rollouts: health and actions.\n"
        "# Generated from argocd/*.lua by argocd/render.py; merge the data keys into the\n"
        "# argocd-cm ConfigMap of your Argo CD (see docs/argocd.md).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  resource.customizations.health.{KEY}: |\n"
        + block(health, 4)
        + f"  resource.customizations.actions.{KEY}: |\n"
        + block(actions, 4)
    )


def main(argv: list[str]) -> int:
    files = generated()
    if "--check" in argv:
        for path, text in files.items():
            if not path.exists() or path.read_text() != text:
                print(f"{path} is out of date: run python argocd/render.py", file=sys.stderr)
                return 1
        if not OUT.exists() or OUT.read_text() != render():
            print(f"{OUT} is out of date: run python argocd/render.py", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    OUT.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
