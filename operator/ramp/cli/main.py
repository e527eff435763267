"""``kubectl ramp``: watch, steer and preview Rollouts from the terminal.

Installed as ``kubectl-ramp`` (kubectl finds it on PATH as ``kubectl ramp``); also
``python -m ramp.cli``. Exit status: 0 success, 1 error (and, for ``status``, an Aborted or
Degraded rollout), 2 ``status`` timed out or the command line is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ramp.cli import parser
from ramp.cli.client import CliError, NotFound, api_error
from ramp.cli.commands import Commands
from ramp.cli.output import EXIT_FAILED
from ramp.cli.safe import visible

__all__ = ["Commands", "build_parser", "main"]


def dashboard(c: Commands) -> int:
    """``kubectl ramp dashboard``: imported when asked for (aiohttp and the templates)."""
    from ramp.cli.dashboard import run

    a = c.args
    return run(c.kube.api_client, c.kube.namespace, a.all_namespaces, a.port, a.open)


def build_parser() -> argparse.ArgumentParser:
    return parser.build_parser(dashboard)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = Commands(args)
    try:
        result: int = args.func(commands)
        return result
    except NotFound as exc:
        print(f"Error: {visible(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except CliError as exc:
        print(f"Error: {visible(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if isinstance(exc, ApiException):
            print(f"Error from the API server: {visible(api_error(exc))}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, HTTPError):
            print(f"Error: cannot reach the API server: {visible(exc)}", file=sys.stderr)
            return EXIT_FAILED
        raise


__all__ = ["build_parser", "main"]
