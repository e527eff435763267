"""The verb table (issue 21): every copy of the verb list is generated from
``ramp.api.verbs`` or checked against it here, so a copy that drifts fails a test."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ramp.api.rollout import HandledTokens
from ramp.api.verbs import BY_NAME, NAMES, TOKEN_VERBS, VERBS, Verb
from ramp.cli.dashboard import views
from ramp.cli.main import Commands, build_parser
from ramp.core.model import TOKEN_VERBS as PLANNER_TOKEN_VERBS

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
    monkeypatch.setattr(cli, "VERBS", (*VERBS, drain))
    monkeypatch.setattr(cli, "BY_NAME", {**BY_NAME, "drain": drain})
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
