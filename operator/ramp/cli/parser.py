"""The command line of ``kubectl ramp`` (argparse): one function per command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ramp import __version__
from ramp.api.verbs import VERBS
from ramp.cli import offline, watching
from ramp.cli.commands import Commands
from ramp.cli.output import duration_arg


def _connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """kubectl's connection options; on subcommands they only override when given."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("connection (as kubectl)")
    group.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)"
    )
    group.add_argument("--context", default=default, help="kubeconfig context to use")
    group.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's)"
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="plain text output (also when stdout is not a terminal, or NO_COLOR is set)",
    )


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=["json", "yaml"], help="print data instead of a table"
    )


def build_parser(dashboard: Callable[[Commands], int] | None = None) -> argparse.ArgumentParser:
    """The command line; ``dashboard`` runs ``kubectl ramp dashboard`` (:mod:`ramp.cli.main`
    gives it: this module never imports the dashboard, which parses its verbs here)."""
    parser = argparse.ArgumentParser(
        prog="kubectl ramp",
        description="Watch, steer and preview Ramp Rollouts (ramp.dev/v1alpha1).",
        epilog="Run `kubectl ramp COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"kubectl-ramp {__version__}")
    _connection_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help)
        _connection_options(p, suppress=True)
        return p

    p = command(
        "get",
        "list Rollouts, or show one (--watch: a live view)",
        "Without NAME: a table of the Rollouts (phase, desired/actual weight, step, ready). "
        "With NAME: its steps (the current one highlighted), weights, ready pods per "
        "revision, latest gate measurements, conditions and recent Events (blue-green: the "
        "active and preview revisions, why no switch yet, the rollback window). --watch keeps "
        "the view live, redrawn when the Rollout, its Deployments or its Events change.",
    )
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("-w", "--watch", action="store_true", help="keep the view live")
    p.add_argument(
        "--timeout", type=duration_arg, default=None, help="with --watch: stop after this long"
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list every namespace")
    _output_option(p)
    p.set_defaults(func=watching.get)

    def verb(name: str, help: str, func: Callable[[Commands], int]) -> argparse.ArgumentParser:
        p = command(name, help)
        p.add_argument("name", metavar="NAME")
        p.set_defaults(func=func)
        return p

    def waiting(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--wait", action="store_true", help="wait until the operator has acted on it"
        )
        p.add_argument(
            "--timeout", type=duration_arg, default=30.0, help="with --wait (default 30s)"
        )

    p = verb("promote", "skip the current step (--full: every remaining step)", Commands.promote)
    p.add_argument("--full", action="store_true", help="promote to 100%% now, skipping the steps")
    waiting(p)
    waiting(verb("abort", "abort the rollout: back to the stable revision", Commands.abort))
    waiting(verb("retry", "restart an aborted rollout at step 1", Commands.retry))
    verb("pause", "hold the rollout where it is (spec.paused=true)", Commands.pause)
    verb("resume", "let a paused rollout go on (removes spec.paused)", Commands.resume)

    p = verb(
        "undo",
        "go back to the previous stable template",
        Commands.undo,
    )
    p.description = (
        "Set spec.template back to the previous revision: during a rollout, the stable one "
        "(a rollback without steps); after a rollout, the one before (kept at zero replicas "
        "per revisionHistoryLimit), which rolls out through the steps. Blue-green: flip "
        "the active Service back to the warm previous revision (ramp.dev/rollback), inside "
        "the rollback window only (--wait: print the operator's answer)."
    )
    p.add_argument("--to-revision", metavar="REV", help="a revision hash to go back to")
    p.add_argument("--wait", action="store_true", help="blue-green: wait for the operator's answer")
    p.add_argument("--timeout", type=duration_arg, default=30.0, help="with --wait (default 30s)")

    p = command("set", "change a Rollout's template")
    set_sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    image = set_sub.add_parser(
        "image",
        help="set container images (starts a rollout)",
        description="Set container images: kubectl ramp set image NAME app=registry/app:2 "
        "(CONTAINER may be * for every container).",
    )
    _connection_options(image, suppress=True)
    image.add_argument("name", metavar="NAME")
    image.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE")
    image.set_defaults(func=Commands.set_image)

    p = command(
        "status",
        "wait for a Rollout to finish: exit 0 Healthy, 1 Aborted/Degraded, 2 timeout",
        "Print a line each time the rollout progresses and exit when it settles: 0 when "
        "Healthy, 1 when Aborted or Degraded, 2 when --timeout passes first (for CI).",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--timeout", type=duration_arg, default=300.0, help="how long to wait (default 5m)"
    )
    p.set_defaults(func=watching.status)

    p = command(
        "plan",
        "preview a Rollout's steps offline: replicas, actual weights, least time",
        "For each step of the Rollout(s) in the file: the canary and stable replicas, the "
        "actual weight (with a warning when a weight is not representable), and the least "
        "time the steps take. No cluster is needed; AnalysisTemplates in the same file are "
        "used for the time of analysis steps. For a blue-green Rollout: the release's "
        "sequence (green up, preview, analyses, promotion, switch, blue warm, scale-down).",
    )
    p.add_argument("-f", "--filename", required=True, help="YAML file ('-' for stdin)")
    p.add_argument("--replicas", type=int, help="plan for this many replicas instead")
    _output_option(p)
    p.set_defaults(func=offline.plan)

    p = command(
        "convert",
        "Argo Rollouts manifests to Ramp (exit 3 when something did not carry over)",
        "Convert Argo Rollouts manifests (Rollout, AnalysisTemplate, ClusterAnalysisTemplate) "
        "to Ramp's, offline; other documents pass through. Each field without a Ramp "
        "equivalent is warned on stderr, naming it; exit 0 when the conversion is lossless, "
        "3 when not. `convert deployment/NAME` reads a live Deployment (read-only) and "
        "prints a Rollout that adopts it through spec.workloadRef.",
    )
    p.add_argument("source", nargs="?", metavar="deployment/NAME")
    p.add_argument("-f", "--filename", help="YAML file of Argo manifests ('-' for stdin)")
    p.set_defaults(func=offline.convert)

    p = command(
        "dashboard",
        "a local web UI: Rollouts live, analysis plots, buttons for the verbs",
        "Serve a web UI on 127.0.0.1 that uses your kubeconfig's credentials (nothing runs "
        "in the cluster: it can do what your RBAC allows and no more). Prints the URL, "
        "which carries an access token.",
    )
    p.add_argument("--port", type=int, default=3100, help="port on 127.0.0.1 (0: any free)")
    p.add_argument("--open", action="store_true", help="open the URL in a browser")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p.set_defaults(func=dashboard)

    for v in VERBS:  # a token verb of the table without a command of its own: a request
        if v.token and v.cli[0] not in sub.choices:
            p = verb(v.cli[0], v.summary, Commands.request)
            p.set_defaults(verb=v.name)
            waiting(p)
    return parser
