"""The verb table (issue 21): every copy of the verb list is generated from
``ramp.api.verbs`` or checked against it here, so a copy that drifts fails a test."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ramp.api.labels import revision_hash
from ramp.api.rollout import HandledTokens, Rollout
from ramp.api.verbs import BY_NAME, NAMES, TOKEN_VERBS, VERBS, Verb
from ramp.cli.dashboard import views
from ramp.cli.main import Commands, build_parser
from ramp.core.model import TOKEN_VERBS as PLANNER_TOKEN_VERBS
from ramp.core.plan import Child, Observed, plan

REPO = Path(__file__).resolve().parents[2]


def test_the_table_is_well_formed() -> None:
    assert len(NAMES) == len(VERBS) and list(BY_NAME) == list(NAMES)
    for verb in VERBS:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", verb.name), verb.name
    assert BY_NAME["promote-full"].status_key == "promoteFull"
    assert BY_NAME["promote-full"].annotation == "ramp.dev/promote-full"


def test_handled_tokens_has_one_field_per_token_verb() -> None:
    """The status model (and so the CRD's status schema) keeps one token per token verb."""
    assert list(HandledTokens.model_fields) == [BY_NAME[v].field for v in TOKEN_VERBS]
    assert list(HandledTokens().model_dump(by_alias=True)) == [
        BY_NAME[v].status_key for v in TOKEN_VERBS
    ]


def test_the_planner_handles_the_token_verbs_of_the_table() -> None:
    assert PLANNER_TOKEN_VERBS == TOKEN_VERBS


def test_the_dashboard_offers_a_button_per_verb() -> None:
    assert tuple(views.VERBS) == NAMES


@pytest.mark.parametrize("verb", VERBS, ids=NAMES)
def test_each_verb_is_a_cli_command(verb: Verb) -> None:
    """The dashboard and the docs run ``kubectl ramp <verb.cli> NAME``: it parses, and a
    token verb's command can wait for the operator's answer."""
    args = build_parser().parse_args([*verb.cli, "web"])
    assert args.name == "web"
    assert getattr(Commands, args.func.__name__) is args.func
    if verb.token:
        assert hasattr(args, "wait")


def test_argocd_actions_are_generated_from_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "argocd" / "render.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    discovery = (REPO / "argocd" / "actions" / "discovery.lua").read_text()
    assert tuple(re.findall(r'^actions\["([a-z-]+)"\]', discovery, re.M)) == NAMES
    for verb in VERBS:
        action = (REPO / "argocd" / "actions" / verb.name / "action.lua").read_text()
        assert (f'"{verb.annotation}"' in action) == verb.token, verb.name


def test_the_docs_list_every_verb() -> None:
    argocd = (REPO / "docs" / "argocd.md").read_text()
    assert tuple(re.findall(r"^\| `([a-z-]+)` \|", argocd, re.M)) == NAMES
    dashboard = (REPO / "docs" / "dashboard.md").read_text()
    buttons = re.search(r"\*\*Buttons\*\*: ([a-z, -]+)\.", dashboard)
    assert buttons is not None and tuple(buttons.group(1).split(", ")) == NAMES
    cli = (REPO / "docs" / "cli.md").read_text()
    for verb in VERBS:
        command = " ".join([verb.cli[0], "NAME", *verb.cli[1:]])
        assert f"`{command}" in cli, command


class _Kube:
    namespace = "shop"

    def __init__(self) -> None:
        self.requested: list[tuple[str, str]] = []

    def get(self, name: str) -> dict[str, object]:
        return {"spec": {}, "status": {"canaryRevision": "c1", "phase": "Progressing"}}

    def request(self, name: str, verb: str) -> str:
        self.requested.append((name, verb))
        return "t1"


def test_a_new_token_verb_gets_a_command_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token verb of the table without a command of its own is a plain request: no
    edit of the CLI (nor of the dashboard, which runs the table's command line)."""
    cli = importlib.import_module("ramp.cli.main")  # the package exports a main() too
    drain = Verb("drain", "drain it", token=True, cli=("drain",), icon="x", disabled="false")
    monkeypatch.setattr(importlib.import_module("ramp.cli.parser"), "VERBS", (*VERBS, drain))
    commands_module = importlib.import_module("ramp.cli.commands")
    monkeypatch.setattr(commands_module, "BY_NAME", {**BY_NAME, "drain": drain})
    args = cli.build_parser().parse_args(["drain", "web"])
    assert args.func is Commands.request and args.verb == "drain" and args.wait is False
    commands = Commands(args)
    kube = _Kube()
    commands._kube = kube  # type: ignore[assignment]
    lines: list[str] = []
    commands.out.line = lines.append  # type: ignore[method-assign,assignment]
    assert commands.request() == 0
    assert kube.requested == [("web", "drain")]
    assert lines == ["rollout shop/web: drain it requested (ramp.dev/drain=t1)"]


# --- the planner: every token verb is answered, acted on or ignored with an Event ----------


def _rollout(annotations: dict[str, str], status: dict[str, Any] | None) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    body: dict[str, Any] = {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns", "generation": 1, "annotations": annotations},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        },
    }
    if status is not None:
        body["status"] = status
    return body


@pytest.mark.parametrize("name", TOKEN_VERBS)
def test_the_planner_answers_every_token_verb(name: str) -> None:
    """A token verb that the planner does not know would be recorded as handled and
    silently dropped: on a steady Rollout (nothing to promote, abort, retry or roll
    back), each token verb is recorded once and answered by an Event naming it."""
    first = _rollout({}, None)
    rev = revision_hash(first["spec"]["template"])
    child = Child(f"web-{rev}", rev, "stable", 2, 2, 2, True)
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def observed(body: dict[str, Any]) -> Observed:
        return Observed(
            rollout=Rollout.model_validate(body),
            template=body["spec"]["template"],
            generation=1,
            annotations=body["metadata"]["annotations"],
            children=(child,),
        )

    steady = plan(observed(first), now).status.to_k8s()
    assert steady.get("stableRevision") == rev
    verb = BY_NAME[name]
    result = plan(observed(_rollout({verb.annotation: "t1"}, steady)), now)
    handled = result.status.to_k8s().get("handledTokens") or {}
    assert handled.get(verb.status_key) == "t1"
    camel = "".join(part.capitalize() for part in name.split("-"))
    assert any(e.reason.startswith(camel) for e in result.events), [
        (e.reason, e.message) for e in result.events
    ]
