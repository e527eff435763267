"""The ``job`` check: a Job run once per measurement; what happened to it is the verdict.

The Job (:func:`build_job`) is named from the Rollout's uid, the canary revision, the
analysis run (the step), the metric and the attempt (:func:`job_name`): an operator that
restarts while a Job runs finds the same Job and never starts a second one. It is owned
by the Rollout, has ``activeDeadlineSeconds`` always set, ``backoffLimit: 0`` (no hidden
retries), ``restartPolicy: Never``, and gets the Rollout, its namespace, the revisions
and the Service names in every container's environment.

Verdicts (:func:`judge_job`, pure):

=================================================  ==========================================
what the Job and its pod show                      verdict
=================================================  ==========================================
``Complete``                                       Pass
``Failed`` and a container exited non-zero         Fail (exit code, termination message)
``Failed`` by its deadline                         Inconclusive (the check never finished)
a container that cannot start (image pull, bad     Inconclusive at once (the Job is deleted)
image name, config error)
unschedulable for longer than ``UNSCHEDULABLE``    Inconclusive (the Job is deleted)
``Failed`` without a container's exit (evicted,    Inconclusive
deleted pod), the Job deleted before it ended
still running                                      no verdict yet (the measurement waits)
=================================================  ==========================================

Nothing the infrastructure did is ever a Pass. The termination message and the end of
the failed (or passed) container's log, bounded, go into the measurement's message.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ramp.analysis.cel import Judgement
from ramp.analysis.promql import MeasurementId, QueryContext
from ramp.api.analysis import Verdict
from ramp.api.sources import JobSource

CHECK_LABEL = "ramp.dev/check"
"""On every check Job and its pods: the metric's name."""
ROLLOUT_LABEL = "ramp.dev/rollout"
ANALYSIS_LABEL = "ramp.dev/analysis"
UNSCHEDULABLE_SECONDS = 60.0
"""A check pod unschedulable this long is Inconclusive (its Job is deleted)."""
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 2048
POLL_SECONDS = 1.0
CANNOT_START = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Container waiting reasons that mean the check cannot run (infrastructure)."""


def job_name(
    rollout: str,
    uid: str,
    revision: str,
    analysis: str,
    metric: str,
    attempt: int,
    started: str = "",
) -> str:
    """The Job's name: readable prefix, a hash of what identifies the measurement; at
    most 52 characters (its pods' names get 11 more).

    >>> job_name("checkout", "u-1", "abc", "step-0", "smoke", 1)
    'checkout-smoke-1-8dac3340c5'
    >>> len(job_name("x" * 253, "u", "r", "background", "m" * 63, 1000))
    52
    """
    digest = hashlib.sha256(
        "\x00".join((uid, revision, analysis, started, metric, str(attempt))).encode()
    ).hexdigest()[:10]
    tail = f"-{attempt}-{digest}"
    head = re.sub(r"[^a-z0-9-]", "-", f"{rollout[:20].rstrip('-')}-{metric.lower()}")
    head = head[: 52 - len(tail)].strip("-.") or "check"
    return head + tail


def environment(context: QueryContext, run: MeasurementId) -> list[dict[str, str]]:
    """The variables every container of the check gets."""
    values = {
        "RAMP_ROLLOUT": context.rollout,
        "RAMP_NAMESPACE": context.namespace,
        "RAMP_CANARY_REVISION": context.canary_revision or "",
        "RAMP_STABLE_REVISION": context.stable_revision or "",
        "RAMP_ANALYSIS": run.analysis,
        "RAMP_ATTEMPT": str(run.attempt),
    }
    for role, service in sorted(run.services.items()):
        values[f"RAMP_{role.upper()}_SERVICE"] = service
    return [{"name": k, "value": v} for k, v in values.items()]


def build_job(
    source: JobSource,
    name: str,
    context: QueryContext,
    run: MeasurementId,
    metric: str,
) -> dict[str, Any]:
    """The Job object to create (deadline, no retries, owned by the Rollout)."""
    labels = {ROLLOUT_LABEL: context.rollout[:63].rstrip("-_."), CHECK_LABEL: metric}
    template_meta = dict(source.template.metadata or {})
    pod_labels = {**(template_meta.get("labels") or {}), **labels}
    spec = dict(source.template.spec)
    env = environment(context, run)
    ours = {x["name"] for x in env}
    containers = []
    for container in spec.get("containers") or []:
        own = [e for e in container.get("env") or [] if e.get("name") not in ours]
        containers.append({**container, "env": [*own, *env]})
    spec.update(containers=containers, restartPolicy="Never")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": context.namespace,
            "labels": labels,
            "annotations": {
                "ramp.dev/analysis": run.analysis,
                "ramp.dev/attempt": str(run.attempt),
                "ramp.dev/revision": context.canary_revision or "",
            },
            "ownerReferences": [
                {
                    "apiVersion": "ramp.dev/v1alpha1",
                    "kind": "Rollout",
                    "name": context.rollout,
                    "uid": run.uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "activeDeadlineSeconds": source.active_deadline_seconds,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {**template_meta, "labels": pod_labels}, "spec": spec},
        },
    }


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job controller has ended the Job, or is ending it."""
    ends = ("Complete", "Failed", "FailureTarget", "SuccessCriteriaMet")
    return any(_condition(job, kind) is not None for kind in ends)


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def failed_exit(pods: Sequence[Mapping[str, Any]]) -> tuple[str, int, str] | None:
    """The first container that exited non-zero: (container, exit code, termination
    message), or None."""
    for pod in pods:
        for cs in _statuses(pod):
            term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
                "terminated"
            )
            if term and term.get("exitCode") not in (None, 0):
                return str(cs.get("name")), int(term["exitCode"]), str(term.get("message") or "")
    return None


def cannot_start(pods: Sequence[Mapping[str, Any]], now: datetime) -> str | None:
    """Why the check's container cannot run (infrastructure), or None."""
    for pod in pods:
        for cs in _statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in CANNOT_START:
                said = " ".join(str(waiting.get("message") or "").split())[:200]
                return f"container {cs.get('name')}: {waiting['reason']}" + (
                    f" ({said})" if said else ""
                )
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                since = _time(cond.get("lastTransitionTime"))
                if since is not None and (now - since).total_seconds() >= UNSCHEDULABLE_SECONDS:
                    return f"the pod is unschedulable: {str(cond.get('message') or '')[:200]}"
    return None


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def judge_job(
    job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], now: datetime
) -> Judgement | None:
    """The verdict on the Job and its pods; None while it runs (see the module's table)."""
    if job is None:
        return Judgement(Verdict.INCONCLUSIVE, "the Job is gone before it finished (cut off)")
    if _condition(job, "Complete") is not None:
        return Judgement(Verdict.PASS, "the Job completed")
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is not None:
        reason = str(failed.get("reason") or "")
        if reason == "DeadlineExceeded":
            deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
            return Judgement(
                Verdict.INCONCLUSIVE,
                f"the Job ran out of its deadline ({deadline}s) before it finished",
            )
        exited = failed_exit(pods)
        if exited is not None:
            container, code, said = exited
            text = " ".join(said.split())[:300]
            return Judgement(
                Verdict.FAIL,
                f"container {container} exited with code {code}" + (f": {text}" if text else ""),
            )
        return Judgement(
            Verdict.INCONCLUSIVE,
            f"the Job failed ({reason or 'no reason'}) without a container's own exit",
        )
    problem = cannot_start(pods, now)
    if problem is not None:
        return Judgement(Verdict.INCONCLUSIVE, f"the check cannot run: {problem}")
    return None


class JobApi(Protocol):
    """What the job check needs of the API server (blocking calls)."""

    def create_job(self, namespace: str, body: dict[str, Any]) -> None: ...
    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def job_pods(self, namespace: str, job_uid: str) -> list[dict[str, Any]]: ...
    def log_tail(self, namespace: str, pod: str, container: str) -> str: ...
    def delete_job(self, namespace: str, name: str) -> None: ...


class KubeJobs:
    """:class:`JobApi` over the official client (create-if-absent)."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self._apis: dict[str, Any] = {}
        self.sanitize: Callable[[Any], Any] = api_client.sanitize_for_serialization
        self.may_write: Callable[[], bool] = lambda: True
        """False on a standby: it creates no Job (the leader does)."""

    def _api(self, kind: str) -> Any:
        """``BatchV1Api`` / ``CoreV1Api``, built at the first check Job (their classes
        cost the operator's memory: see :class:`ramp.shell.adapters.kube_client.EventsApi`)."""
        if kind not in self._apis:
            from kubernetes import client

            self._apis[kind] = getattr(client, kind)(self.api_client)
        return self._apis[kind]

    @property
    def batch(self) -> Any:
        return self._api("BatchV1Api")

    @batch.setter
    def batch(self, value: Any) -> None:
        self._apis["BatchV1Api"] = value

    @property
    def core(self) -> Any:
        return self._api("CoreV1Api")

    @core.setter
    def core(self, value: Any) -> None:
        self._apis["CoreV1Api"] = value

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        if not self.may_write():
            raise PermissionError("not the leader: no check Job is created")
        try:
            self.batch.create_namespaced_job(namespace, body, _request_timeout=(5, 30))
        except ApiException as error:
            if error.status != 409:  # already exists: the same measurement's Job
                raise

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.batch.read_namespaced_job(name, namespace, _request_timeout=(5, 30))
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: dict[str, Any] = self.sanitize(job)
        return found

    def job_pods(self, namespace: str, job_uid: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(
            namespace,
            label_selector=f"batch.kubernetes.io/controller-uid={job_uid}",
            _request_timeout=(5, 30),
        )
        return [self.sanitize(p) for p in pods.items]

    def log_tail(self, namespace: str, pod: str, container: str) -> str:
        try:
            text = self.core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                tail_lines=LOG_TAIL_LINES,
                limit_bytes=LOG_TAIL_BYTES,
                _request_timeout=(5, 10),
            )
        except Exception:  # the log is a courtesy: no log is no reason to change a verdict
            return ""
        return str(text or "")

    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background", _request_timeout=(5, 30)
            )
        except ApiException as error:
            if error.status != 404:
                raise


def _uid(job: Mapping[str, Any]) -> str:
    return str((job.get("metadata") or {}).get("uid") or "")


async def run_job(
    jobs: JobApi,
    source: JobSource,
    context: QueryContext,
    run: MeasurementId,
    metric: str,
    clock: Callable[[], datetime],
    poll: float = POLL_SECONDS,
) -> tuple[str, str | None, Verdict, str]:
    """Create the measurement's Job unless it exists, wait for its verdict: (Job name,
    value, verdict, why). Bounded by the caller's deadline (the scheduler's)."""
    name = job_name(
        context.rollout,
        run.uid,
        context.canary_revision or "",
        run.analysis,
        metric,
        run.attempt,
        run.started,
    )
    body = build_job(source, name, context, run, metric)
    ns = context.namespace
    await asyncio.to_thread(jobs.create_job, ns, body)
    while True:
        job = await asyncio.to_thread(jobs.read_job, ns, name)
        pods = await asyncio.to_thread(jobs.job_pods, ns, _uid(job)) if job else []
        judgement = judge_job(job, pods, clock())
        if judgement is not None:
            break
        await asyncio.sleep(poll)
    value: str | None = None
    detail = ""
    if job is not None and not finished(job):  # cannot run: never left to hang on
        await asyncio.to_thread(jobs.delete_job, ns, name)
    exited = failed_exit(pods)
    if exited is not None:
        value = f"exit {exited[1]}"
    elif judgement.verdict is Verdict.PASS:
        value = "exit 0"
    if pods and judgement.verdict in (Verdict.PASS, Verdict.FAIL):
        pod = pods[0]
        container = (
            exited[0]
            if exited
            else str(((pod.get("spec") or {}).get("containers") or [{}])[0].get("name") or "")
        )
        tail = await asyncio.to_thread(
            jobs.log_tail, ns, str((pod.get("metadata") or {}).get("name")), container
        )
        lines = [line for line in tail.strip().splitlines() if line.strip()][-5:]
        if lines:
            detail = "; log: " + " | ".join(line.strip()[:160] for line in lines)
    return name, value, judgement.verdict, f"Job {name}: {judgement.message}{detail}"
