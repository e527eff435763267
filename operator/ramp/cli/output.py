"""Where ``kubectl ramp`` writes, its exit codes and its argument types."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, NoReturn

import yaml
from rich.console import RenderableType

from ramp.api.durations import parse_duration
from ramp.cli.client import CliError
from ramp.cli.render import to_text
from ramp.cli.safe import SafeConsole, visible

EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2
EXIT_LOSSY = 3
"""``convert``: converted, but some fields had no Ramp equivalent (each one warned)."""


class Output:
    """Where results go: rich on a terminal, plain text otherwise or with ``--no-color``."""

    def __init__(self, plain: bool) -> None:
        self.plain = plain or not sys.stdout.isatty()
        self.console = SafeConsole(no_color=self.plain)

    @property
    def width(self) -> int:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            return int(columns)
        return shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120

    def show(self, renderable: RenderableType) -> None:
        if self.plain:
            sys.stdout.write(to_text(renderable, self.width))
            sys.stdout.flush()
        else:
            self.console.print(renderable)

    def line(self, text: str) -> None:
        print(visible(text), flush=True)

    def data(self, obj: Any, fmt: str) -> None:
        if fmt == "json":
            print(json.dumps(obj, indent=2, sort_keys=False))
        else:
            sys.stdout.write(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))


def fail(message: str) -> NoReturn:
    raise CliError(message)


def duration_arg(text: str) -> float:
    """``--timeout`` values: ``30s``, ``5m``, ``1h``, or plain seconds."""
    try:
        if text.replace(".", "", 1).isdigit():
            return float(text)
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
