"""The verbs of ``kubectl ramp`` that act on one Rollout (promote, abort, retry, pause,
resume, set image, undo): the same code for the command line and the dashboard's buttons."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ramp.api.labels import REVISION_LABEL, revision_hash
from ramp.api.verbs import BY_NAME
from ramp.cli.client import Kube, Obj, RolloutWatch, connect
from ramp.cli.facts import images, parse_steps, progress_line, recent_events
from ramp.cli.output import EXIT_OK, Output, fail
from ramp.cli.render_bluegreen import is_blue_green, rollback_refusal
from ramp.cli.templates import original_template, recorded_template


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
