"""``kubectl ramp convert`` and ``plan``: manifests in, manifests or a preview out (offline,
but for ``convert deployment/NAME``, which reads one Deployment)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ramp.cli.commands import Commands
from ramp.cli.output import EXIT_LOSSY, EXIT_OK, fail
from ramp.cli.preview import load_documents, plan_rollout, render_plan
from ramp.cli.safe import visible


def convert(c: Commands) -> int:
    """Exit 0: lossless; 3: converted, with a warning per field that did not carry over."""
    from ramp.cli.convert import convert_documents, dump, rollout_for_deployment

    a = c.args
    if a.source:
        kind, _, name = a.source.partition("/")
        if kind not in ("deployment", "deployments", "deploy", "deployment.apps") or not name:
            fail(f"expected deployment/NAME, got {a.source!r}")
        dep = c.kube.apps.read_namespaced_deployment(name, c.kube.namespace)
        print(dump([rollout_for_deployment(c.kube._dict(dep))]), end="")
        return EXIT_OK
    if not a.filename:
        fail("give -f FILE (Argo Rollouts manifests) or deployment/NAME")
    try:
        text = sys.stdin.read() if a.filename == "-" else Path(a.filename).read_text()
        docs = list(yaml.safe_load_all(text))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {a.filename}: {exc}")
    result = convert_documents(docs)
    print(dump(result.documents), end="")
    for note in result.notes:
        print(f"note: {visible(note)}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {visible(warning)}", file=sys.stderr)
    return EXIT_OK if result.lossless else EXIT_LOSSY


def plan(c: Commands) -> int:
    """``kubectl ramp plan -f FILE``: the steps of a Rollout, offline."""
    path = c.args.filename
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = list(yaml.safe_load_all(text))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {exc}")
    try:
        rollouts, templates = load_documents(docs)
    except ValueError as exc:
        fail(str(exc))
    if not rollouts:
        fail(f"{path} holds no Rollout (kind: Rollout, apiVersion: ramp.dev/v1alpha1)")
    from ramp.cli.preview_bluegreen import (
        BlueGreenPlan,
        plan_blue_green,
        render_blue_green_plan,
    )

    replicas = c.args.replicas
    plans = [
        plan_blue_green(r, templates, replicas)
        if r.spec.blue_green is not None
        else plan_rollout(r, templates, replicas)
        for r in rollouts
    ]
    if c.args.output:
        data = [p.to_data() for p in plans]
        c.out.data(data[0] if len(data) == 1 else data, c.args.output)
    else:
        for i, p in enumerate(plans):
            if i:
                print()
            if isinstance(p, BlueGreenPlan):
                c.out.show(render_blue_green_plan(p))
            else:
                c.out.show(render_plan(p))
    return EXIT_OK
