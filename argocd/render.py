"""Write argocd-cm.yaml (the ``resource.customizations`` for Ramp) from the Lua files.

    python argocd/render.py          # rewrite argocd/argocd-cm.yaml
    python argocd/render.py --check  # exit 1 when it is out of date (tests do this)

The Lua files are the source; the ConfigMap snippet embeds them verbatim.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "argocd-cm.yaml"
KEY = "ramp.dev_Rollout"
VERBS = ("promote", "promote-full", "abort", "retry", "pause", "resume", "rollback")


def block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(True))


def render() -> str:
    health = (HERE / "health.lua").read_text()
    discovery = (HERE / "actions" / "discovery.lua").read_text()
    actions = "discovery.lua: |\n" + block(discovery, 2) + "definitions:\n"
    for verb in VERBS:
        script = (HERE / "actions" / verb / "action.lua").read_text()
        actions += f"  - name: {verb}\n    action.lua: |\n" + block(script, 6)
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
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python argocd/render.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
