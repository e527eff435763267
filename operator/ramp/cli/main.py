"""``kubectl ramp``: watch, steer and preview Rollouts from the terminal.

Installed as ``kubectl-ramp`` (kubectl finds it on PATH as ``kubectl ramp``); also
``python -m ramp.cli``. Exit status: 0 success, 1 error (and, for ``status``, an Aborted or
Degraded rollout), 2 ``status`` timed out or the command line is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml
from rich.console import RenderableType
from rich.live import Live

from ramp import __version__
from ramp.api.durations import parse_duration
from ramp.api.verbs import BY_NAME, VERBS
from ramp.cli.client import (
    CliError,
    Kube,
    NotFound,
    Obj,
    RolloutWatch,
    api_error,
    connect,
)
from ramp.cli.preview import load_documents, plan_rollout, render_plan
from ramp.cli.render import (
    images,
    outcome,
    parse_steps,
    progress_line,
    recent_events,
    render,
    rollouts_table,
    to_text,
)
from ramp.cli.render_bluegreen import is_blue_green, rollback_refusal
from ramp.cli.safe import SafeConsole, visible
from ramp.cli.templates import original_template, recorded_template
from ramp.core.plan import REVISION_LABEL, revision_hash

EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2
EXIT_LOSSY = 3
"""``convert``: converted, but some fields had no Ramp equivalent (each one warned)."""
WATCH_REDRAW_SECONDS = 5.0
"""Without a change, the live view is redrawn this often (for its ages; no API call)."""

# -- output -------------------------------------------------------------------------------


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


# -- the commands -------------------------------------------------------------------------


class Commands:
    """One method per verb; ``args`` are the parsed command line."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Output(getattr(args, "no_color", False))
        self._kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            api_client, namespace = connect(
                self.args.kubeconfig, self.args.context, self.args.namespace
            )
            self._kube = Kube(api_client, namespace)
        return self._kube

    def _ref(self, name: str) -> str:
        return f"rollout {self.kube.namespace}/{name}"

    # get ----------------------------------------------------------------------------

    def get(self) -> int:
        a = self.args
        if a.name is None:
            if a.watch:
                fail("--watch needs a Rollout name: kubectl ramp get NAME --watch")
            items = self.kube.list_rollouts(a.all_namespaces)
            if a.output:
                self.out.data({"apiVersion": "v1", "kind": "List", "items": items}, a.output)
            elif not items:
                where = "any namespace" if a.all_namespaces else f"namespace {self.kube.namespace}"
                print(f"No rollouts found in {where}.", file=sys.stderr)
            else:
                self.out.show(rollouts_table(items, namespaces=a.all_namespaces))
            return EXIT_OK
        if a.watch:
            return self.watch(a.name, a.timeout)
        rollout = self.kube.get(a.name)
        if a.output:
            self.out.data(rollout, a.output)
            return EXIT_OK
        uid = rollout["metadata"].get("uid")
        self.out.show(
            render(
                rollout,
                self.kube.deployments(a.name),
                self.kube.events(a.name, uid),
                datetime.now(UTC),
            )
        )
        return EXIT_OK

    def watch(self, name: str, timeout: float | None) -> int:
        """The live view: redrawn when a watch delivers a change."""
        self.kube.get(name)
        watcher = RolloutWatch(self.kube, name).start()
        deadline = None if timeout is None else time.monotonic() + timeout

        def frame() -> RenderableType:
            rollout, deployments, events = watcher.snapshot()
            if rollout is None:
                return f"rollout {name} does not exist (any more) in {self.kube.namespace}"
            view = render(
                rollout,
                deployments,
                events,
                datetime.now(UTC),
                compact=None if self.out.plain else self.out.console.width,
            )
            if watcher.error:
                return (
                    to_text(view) + f"\n(watch interrupted, reconnecting: {visible(watcher.error)})"
                )
            return view

        def wait() -> bool | None:
            """Wait for a change: True when one came, False when not (the view's ages may
            be redrawn), None when the timeout is over."""
            left = WATCH_REDRAW_SECONDS
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0:
                    return None
            changed = watcher.changed.wait(left)
            if changed:
                # Let a burst of events settle into one redraw (longer for printed frames).
                time.sleep(0.5 if self.out.plain else 0.05)
            watcher.changed.clear()
            return changed

        try:
            watcher.changed.wait(5)
            watcher.changed.clear()
            if self.out.plain:
                # A new frame only when something changed (not for ages alone).
                changed: bool | None = True
                while changed is not None:
                    if changed:
                        stamp = datetime.now().strftime("%H:%M:%S")
                        sys.stdout.write(f"--- {stamp} ---\n{to_text(frame(), self.out.width)}")
                        sys.stdout.flush()
                    changed = wait()
            else:
                with Live(
                    frame(), console=self.out.console, auto_refresh=False, transient=False
                ) as live:
                    while wait() is not None:
                        live.update(frame(), refresh=True)
        except KeyboardInterrupt:
            pass
        finally:
            watcher.stop()
        return EXIT_OK

    # status -------------------------------------------------------------------------

    def status(self) -> int:
        """Wait for the Rollout to settle: 0 Healthy, 1 Aborted/Degraded, 2 timeout."""
        name, timeout = self.args.name, self.args.timeout
        self.kube.get(name)
        watcher = RolloutWatch(self.kube, name, deployments=False, events=False).start()
        deadline = time.monotonic() + timeout
        last = ""
        try:
            while True:
                watcher.changed.wait(min(5.0, max(deadline - time.monotonic(), 0)))
                watcher.changed.clear()
                rollout, _, _ = watcher.snapshot()
                if rollout is None:
                    if time.monotonic() >= deadline:
                        self.out.line(f"timed out after {timeout:g}s: {self._ref(name)} not found")
                        return EXIT_TIMEOUT
                    continue
                line = progress_line(rollout)
                if line != last:
                    self.out.line(f"{datetime.now().strftime('%H:%M:%S')} {line}")
                    last = line
                result = outcome(rollout)
                if result == "Healthy":
                    return EXIT_OK
                if result is not None:
                    return EXIT_FAILED
                if time.monotonic() >= deadline:
                    self.out.line(
                        f"timed out after {timeout:g}s waiting for {self._ref(name)} to be "
                        f"Healthy (phase {(rollout.get('status') or {}).get('phase')})"
                    )
                    return EXIT_TIMEOUT
        except KeyboardInterrupt:
            return EXIT_TIMEOUT
        finally:
            watcher.stop()

    # one-shot requests ------------------------------------------------------------------

    def _in_progress(self, rollout: Obj) -> bool:
        """A new template is being (or waits to be) rolled out."""
        status = rollout.get("status") or {}
        stable = status.get("stableRevision")
        template = (rollout.get("spec") or {}).get("template")
        if template is None:  # workloadRef: the operator reads the Deployment's template
            return bool(status.get("canaryRevision"))
        template_rev = revision_hash(template)
        return bool(status.get("canaryRevision")) or (stable is not None and stable != template_rev)

    def _adopted(self, name: str, rollout: Obj, what: str) -> None:
        """Fail for a Rollout that adopts a Deployment: its template is the Deployment's."""
        spec = rollout.get("spec") or {}
        ref = spec.get("workloadRef")
        if "template" not in spec and ref:
            dep = ref.get("name")
            fail(
                f"{self._ref(name)} rolls out the template of deployment/{dep} "
                f"(spec.workloadRef): {what} the Deployment instead (kubectl set image "
                f"deployment/{dep} ..., kubectl rollout undo deployment/{dep})"
            )

    def _request(self, verb: str, describe: str) -> int:
        name = self.args.name
        rollout = self.kube.get(name)
        status = rollout.get("status") or {}
        if verb in ("promote", "promote-full", "abort") and not self._in_progress(rollout):
            fail(f"{self._ref(name)} has no rollout in progress: nothing to {verb.split('-')[0]}")
        if verb == "abort" and status.get("phase") == "Aborted":
            self.out.line(f"{self._ref(name)} is already aborted")
            return EXIT_OK
        token = self.kube.request(name, verb)
        self.out.line(f"{self._ref(name)}: {describe} requested (ramp.dev/{verb}={token})")
        if verb.startswith("promote") and rollout["spec"].get("paused"):
            self.out.line("  note: spec.paused is true; the promotion takes effect on resume")
        if verb == "retry" and status.get("phase") not in ("Aborted", "Paused"):
            self.out.line(f"  note: the rollout is {status.get('phase')}, not aborted")
        if self.args.wait:
            attr = BY_NAME[verb].status_key
            done = self._wait_for(
                name,
                lambda o: ((o.get("status") or {}).get("handledTokens") or {}).get(attr) == token,
                self.args.timeout,
            )
            if done is None:
                fail(f"the operator did not act on the request within {self.args.timeout:g}s")
            self.out.line(f"  {progress_line(done)}")
        return EXIT_OK

    def _wait_for(self, name: str, predicate: Callable[[Obj], bool], timeout: float) -> Obj | None:
        watcher = RolloutWatch(self.kube, name, deployments=False, events=False).start()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                watcher.changed.wait(max(0.0, min(2.0, deadline - time.monotonic())))
                watcher.changed.clear()
                rollout, _, _ = watcher.snapshot()
                if rollout is not None and predicate(rollout):
                    return rollout
            return None
        finally:
            watcher.stop()

    def _blue_green(self) -> bool:
        return is_blue_green(self.kube.get(self.args.name))

    def promote(self) -> int:
        bg = self._blue_green()
        if self.args.full:
            what = (
                "full promotion (switch once green is ready, no analysis)"
                if bg
                else "full promotion (skip every remaining step)"
            )
            return self._request("promote-full", what)
        if bg:
            return self._request("promote", "promotion (switch once green is ready and verified)")
        return self._request("promote", "promotion to the next step")

    def abort(self) -> int:
        return self._request("abort", "abort (back to the stable revision)")

    def request(self) -> int:
        """A token verb of the table without a command of its own (``args.verb``)."""
        verb = BY_NAME[self.args.verb]
        return self._request(verb.name, verb.summary)

    def retry(self) -> int:
        if self._blue_green():
            return self._request("retry", "retry (the blue-green release restarts)")
        return self._request("retry", "retry (the canary restarts at step 1)")

    def pause(self) -> int:
        name = self.args.name
        self.kube.patch(name, {"spec": {"paused": True}})
        self.out.line(f"{self._ref(name)} paused (spec.paused=true)")
        return EXIT_OK

    def resume(self) -> int:
        name = self.args.name
        rollout = self.kube.patch(name, {"spec": {"paused": None}})
        self.out.line(f"{self._ref(name)} resumed (spec.paused removed)")
        status = rollout.get("status") or {}
        steps = parse_steps(rollout)
        index = status.get("currentStepIndex")
        if status.get("canaryRevision") and index is not None and index < len(steps):
            step = steps[index]
            if step.pause is not None and step.pause.duration is None:
                self.out.line(
                    f"  note: step {index + 1} waits for a promote: kubectl ramp promote {name}"
                )
        return EXIT_OK

    # template changes -------------------------------------------------------------------

    def set_image(self) -> int:
        name = self.args.name
        pairs: list[tuple[str, str]] = []
        for item in self.args.images:
            container, sep, image = item.partition("=")
            if not sep or not container or not image:
                fail(f"expected CONTAINER=IMAGE, got {item!r}")
            pairs.append((container, image))

        def change(obj: Obj) -> bool:
            self._adopted(name, obj, "set the image of")
            pod = obj["spec"]["template"].setdefault("spec", {})
            containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
            changed = False
            for container, image in pairs:
                matches = [c for c in containers if container in ("*", c.get("name"))]
                if not matches:
                    names = ", ".join(str(c.get("name")) for c in containers)
                    fail(f"{self._ref(name)} has no container {container!r} (containers: {names})")
                for c in matches:
                    if c.get("image") != image:
                        c["image"] = image
                        changed = True
            return changed

        updated = self.kube.update(name, change)
        if updated is None:
            self.out.line(f"{self._ref(name)}: image unchanged")
        else:
            rev = revision_hash(updated["spec"]["template"])
            self.out.line(
                f"{self._ref(name)}: image set ({images(updated['spec']['template'])}); "
                f"revision {rev} rolls out"
            )
        return EXIT_OK

    def undo(self) -> int:
        name = self.args.name
        rollout = self.kube.get(name)
        status = rollout.get("status") or {}
        green = status.get("canaryRevision")
        aborted = green is not None and status.get("abortedRevision") == green
        # Blue-green: a flip back to the warm revision; after an aborted release (or with
        # --to-revision), the template goes back as for canary.
        if is_blue_green(rollout) and not self.args.to_revision and not aborted:
            return self._rollback_blue_green(name, rollout)
        stable = status.get("stableRevision")
        self._adopted(name, rollout, "undo on")
        current = revision_hash(rollout["spec"]["template"])
        children = {
            (d["metadata"].get("labels") or {}).get(REVISION_LABEL, ""): d
            for d in self.kube.deployments(name)
        }
        if self.args.to_revision:
            target = self.args.to_revision
            if target not in children:
                known = ", ".join(sorted(children)) or "none"
                fail(f"{self._ref(name)} has no Deployment of revision {target} (known: {known})")
        elif stable and current != stable:
            target = stable  # a rollout is in progress or aborted: back to the stable one
        else:
            older = [d for rev, d in children.items() if rev and rev not in (stable, current)]
            if not older:
                fail(
                    f"{self._ref(name)} has no previous revision to go back to "
                    "(its history is kept per revisionHistoryLimit)"
                )
            older.sort(key=lambda d: str(d["metadata"].get("creationTimestamp", "")))
            target = older[-1]["metadata"]["labels"][REVISION_LABEL]
        if target == current:
            self.out.line(f"{self._ref(name)} already has the template of revision {target}")
            return EXIT_OK
        template = recorded_template(children[target], target) or original_template(
            children[target]["spec"]["template"], target
        )
        if template is None:
            fail(
                f"cannot recover the exact template of revision {target} from its Deployment "
                "(fields defaulted by the API server could not be told apart); "
                f"set spec.template by hand, e.g. from `kubectl get deploy {name}-{target} -o yaml`"
            )

        def change(obj: Obj) -> bool:
            if revision_hash(obj["spec"]["template"]) == target:
                return False
            obj["spec"]["template"] = template
            return True

        self.kube.update(name, change)
        how = (
            "rollback to the stable revision, no steps"
            if target == stable
            else "a rollout of the old revision through the steps"
        )
        self.out.line(
            f"{self._ref(name)}: template set back to revision {target} ({images(template)}): {how}"
        )
        return EXIT_OK

    def _rollback_blue_green(self, name: str, rollout: Obj) -> int:
        """Blue-green: flip the active Service back to the warm previous revision with a
        ``ramp.dev/rollback`` token, inside the rollback window only."""
        refusal = rollback_refusal(rollout, datetime.now(UTC))
        if refusal is not None:
            fail(f"{self._ref(name)}: cannot roll back: {refusal}")
        bg = (rollout.get("status") or {}).get("blueGreen") or {}
        warm = bg.get("warmRevision")
        token = self.kube.request(name, "rollback")
        self.out.line(
            f"{self._ref(name)}: rollback requested (ramp.dev/rollback={token}): the active "
            f"Service flips back to the warm revision {warm} (warm until {bg.get('warmUntil')})"
        )
        if not getattr(self.args, "wait", False):
            return EXIT_OK
        done = self._wait_for(
            name,
            lambda o: ((o.get("status") or {}).get("handledTokens") or {}).get("rollback") == token,
            self.args.timeout,
        )
        if done is None:
            fail(f"the operator did not act on the request within {self.args.timeout:g}s")
        status = done.get("status") or {}
        if status.get("stableRevision") == warm and status.get("abortReason") == "UserRollback":
            self.out.line(f"  flipped back: {progress_line(done)}")
            self.out.line(
                f"  the template is still the rolled-back one: `kubectl ramp undo {name}` sets "
                f"it back to {warm}, `kubectl ramp retry {name}` releases it again"
            )
            return EXIT_OK
        uid = done["metadata"].get("uid")
        refused = [e for e in self.kube.events(name, uid) if e.get("reason") == "RollbackIgnored"]
        why = recent_events(refused, 1)[0].get("message") if refused else progress_line(done)
        fail(f"the operator refused the rollback: {why}")

    # dashboard ------------------------------------------------------------------------

    def dashboard(self) -> int:
        from ramp.cli.dashboard import run

        a = self.args
        return run(self.kube.api_client, self.kube.namespace, a.all_namespaces, a.port, a.open)

    # convert (offline, or read-only from a live Deployment) -------------------------------

    def convert(self) -> int:
        """Exit 0: lossless; 3: converted, with a warning per field that did not carry over."""
        from ramp.cli.convert import convert_documents, dump, rollout_for_deployment

        a = self.args
        if a.source:
            kind, _, name = a.source.partition("/")
            if kind not in ("deployment", "deployments", "deploy", "deployment.apps") or not name:
                fail(f"expected deployment/NAME, got {a.source!r}")
            dep = self.kube.apps.read_namespaced_deployment(name, self.kube.namespace)
            print(dump([rollout_for_deployment(self.kube._dict(dep))]), end="")
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

    # plan (offline) --------------------------------------------------------------------

    def plan(self) -> int:
        path = self.args.filename
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

        replicas = self.args.replicas
        plans = [
            plan_blue_green(r, templates, replicas)
            if r.spec.blue_green is not None
            else plan_rollout(r, templates, replicas)
            for r in rollouts
        ]
        if self.args.output:
            data = [p.to_data() for p in plans]
            self.out.data(data[0] if len(data) == 1 else data, self.args.output)
        else:
            for i, p in enumerate(plans):
                if i:
                    print()
                if isinstance(p, BlueGreenPlan):
                    self.out.show(render_blue_green_plan(p))
                else:
                    self.out.show(render_plan(p))
        return EXIT_OK


# -- the command line ---------------------------------------------------------------------


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


def build_parser() -> argparse.ArgumentParser:
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
    p.set_defaults(func=Commands.get)

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
    p.set_defaults(func=Commands.status)

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
    p.set_defaults(func=Commands.plan)

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
    p.set_defaults(func=Commands.convert)

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
    p.set_defaults(func=Commands.dashboard)

    for v in VERBS:  # a token verb of the table without a command of its own: a request
        if v.token and v.cli[0] not in sub.choices:
            p = verb(v.cli[0], v.summary, Commands.request)
            p.set_defaults(verb=v.name)
            waiting(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
