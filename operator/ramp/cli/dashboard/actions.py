"""The dashboard's buttons: the verb table's command lines (:mod:`ramp.api.verbs`) parsed and
run by the CLI's own code (:mod:`ramp.cli.parser`, :class:`ramp.cli.commands.Commands`),
in-process with the dashboard user's credentials."""

from __future__ import annotations

from typing import Any

from ramp.api.verbs import BY_NAME
from ramp.cli.client import Kube
from ramp.cli.commands import Commands
from ramp.cli.parser import build_parser


class _Capture:
    """Stands in for the CLI's Output: collects the lines a command prints."""

    plain = True
    width = 120

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def show(self, renderable: Any) -> None:
        pass

    def data(self, obj: Any, fmt: str) -> None:
        pass


def run_verb(api_client: Any, namespace: str, name: str, verb: str) -> list[str]:
    """Run ``kubectl ramp VERB NAME`` in-process; returns what it printed."""
    args = build_parser().parse_args([*BY_NAME[verb].cli, name])  # the table's command
    args.no_color, args.wait = True, False
    commands = Commands(args)
    out = _Capture()
    commands.out = out  # type: ignore[assignment]
    commands._kube = Kube(api_client, namespace)
    args.func(commands)
    return out.lines
