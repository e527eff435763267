"""The pure verdict functions of the check providers: web answers, hook answers, Jobs.

Nothing the infrastructure or the transport did is ever a Pass; each table names what a
user would see and the verdict it must give.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ramp.analysis.jobcheck import build_job, job_name, judge_job
from ramp.analysis.promql import MeasurementId, QueryContext
from ramp.analysis.web import judge_answer
from ramp.analysis.webhook import idempotency_key, judge_hook, sign, verify
from ramp.api.analysis import Verdict
from ramp.api.sources import JobSource

P, F, INC, E = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR
OK = "result == 1.0"

WEB = [
    ("pass-bool", 200, {"ok": True}, "ok", OK, None, P),
    ("fail-bool", 200, {"ok": False}, "ok", OK, None, F),
    ("pass-number", 200, {"data": {"rate": 0.001}}, "$.data.rate", "result < 0.01", None, P),
    ("fail-by-failure", 200, {"rate": 0.2}, "rate", "result < 0.01", "result > 0.1", F),
    ("neither", 200, {"rate": 0.05}, "rate", "result < 0.01", "result > 0.1", INC),
    ("numeric-string", 200, {"rate": "0.001"}, "rate", "result < 0.01", None, P),
    ("list", 200, {"r": [0.1, 0.2]}, "r", "result.all(x, x < 0.5)", None, P),
    ("index", 200, {"r": [0.1, 0.9]}, "r[1]", "result < 0.5", None, F),
    ("null-is-no-data", 200, {"rate": None}, "rate", "result < 0.01", None, INC),
    ("nan-is-no-data", 200, {"rate": "NaN"}, "rate", "result < 0.01", None, INC),
    ("missing-path", 200, {"x": 1}, "rate", "result < 0.01", None, E),
    ("string-value", 200, {"rate": "green"}, "rate", "result < 0.01", None, E),
    ("object-value", 200, {"rate": {}}, "rate", "result < 0.01", None, E),
    ("non-2xx", 503, {"ok": True}, "ok", OK, None, E),
    ("redirect", 302, {"ok": True}, "ok", OK, None, E),
    ("not-found", 404, {"ok": True}, "ok", OK, None, E),
    ("no-content-is-not-json", 204, None, "ok", OK, None, E),
    ("infinite", 200, {"rate": "Infinity"}, "rate", "result < 0.01", None, E),
]


@pytest.mark.parametrize(
    ("status", "doc", "path", "success", "failure", "verdict"),
    [c[1:] for c in WEB],
    ids=[c[0] for c in WEB],
)
def test_web_answers(
    status: int, doc: Any, path: str, success: str, failure: str | None, verdict: Verdict
) -> None:
    body = b"" if doc is None else json.dumps(doc).encode()
    judgement, value = judge_answer(status, body, path, success, failure)
    assert judgement.verdict is verdict, judgement.message
    if verdict is E:
        assert value is None


def test_web_answer_that_is_not_json_is_an_error() -> None:
    judgement, _ = judge_answer(200, b"<html>ok</html>", "ok", OK, None)
    assert judgement.verdict is E and "not with JSON" in judgement.message


HOOK = [
    ("pass", 200, {"verdict": "Pass"}, P),
    ("pass-lowercase", 200, {"verdict": "pass"}, P),
    ("fail", 200, {"verdict": "Fail", "message": "checkout broken"}, F),
    ("inconclusive", 200, {"verdict": "Inconclusive"}, INC),
    ("accepted-later", 202, {"verdict": "Pass"}, INC),
    ("accepted-later-empty", 202, None, INC),
    ("no-verdict", 200, {"ok": True}, E),
    ("unknown-verdict", 200, {"verdict": "Maybe"}, E),
    ("empty-200", 200, None, E),
    ("no-content", 204, None, E),
    ("bad-signature", 401, {"verdict": "Pass"}, E),
    ("server-error", 500, {"verdict": "Pass"}, E),
    ("list-answer", 200, ["Pass"], E),
]


@pytest.mark.parametrize(
    ("status", "doc", "verdict"), [c[1:] for c in HOOK], ids=[c[0] for c in HOOK]
)
def test_hook_answers(status: int, doc: Any, verdict: Verdict) -> None:
    body = b"" if doc is None else json.dumps(doc).encode()
    judgement = judge_hook(status, body)
    assert judgement.verdict is verdict, judgement.message


def test_hook_202_is_never_a_pass_and_says_so() -> None:
    judgement = judge_hook(202, b'{"verdict": "Pass"}')
    assert judgement.verdict is INC and "202" in judgement.message


def test_signature_verifies_only_with_the_key_the_timestamp_and_the_body() -> None:
    signature = sign(b"key", "100", b"{}")
    assert verify(b"key", "100", b"{}", signature)
    assert not verify(b"other", "100", b"{}", signature)
    assert not verify(b"key", "101", b"{}", signature)
    assert not verify(b"key", "100", b"{ }", signature)


def test_idempotency_key_is_the_same_for_the_same_measurement_only() -> None:
    key = idempotency_key("uid", "rev", "step-1", "m", 1)
    assert key == idempotency_key("uid", "rev", "step-1", "m", 1)
    others = {
        idempotency_key("uid2", "rev", "step-1", "m", 1),
        idempotency_key("uid", "rev2", "step-1", "m", 1),
        idempotency_key("uid", "rev", "step-2", "m", 1),
        idempotency_key("uid", "rev", "step-1", "n", 1),
        idempotency_key("uid", "rev", "step-1", "m", 2),
    }
    assert key not in others and len(others) == 5


NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "uid": "u"},
        "spec": {"activeDeadlineSeconds": 30},
        "status": {
            "conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]
        },
    }


def _pod(
    terminated: dict[str, Any] | None = None,
    waiting: str | None = None,
    unschedulable_for: float | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if terminated is not None:
        state["terminated"] = terminated
    if waiting is not None:
        state["waiting"] = {"reason": waiting, "message": "pull failed"}
    status: dict[str, Any] = {"containerStatuses": [{"name": "smoke", "state": state}]}
    if unschedulable_for is not None:
        since = NOW - timedelta(seconds=unschedulable_for)
        status = {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available",
                    "lastTransitionTime": since.isoformat().replace("+00:00", "Z"),
                }
            ]
        }
    return {"metadata": {"name": "p"}, "status": status}


EXIT_3 = {"exitCode": 3, "message": "checkout answered 500"}
JOBS = [
    ("complete", _job(("Complete", "")), [_pod({"exitCode": 0})], P),
    ("exit-code", _job(("Failed", "BackoffLimitExceeded")), [_pod(EXIT_3)], F),
    (
        "failure-target-with-exit",
        _job(("FailureTarget", "BackoffLimitExceeded")),
        [_pod(EXIT_3)],
        F,
    ),
    ("deadline", _job(("Failed", "DeadlineExceeded")), [_pod(EXIT_3)], INC),
    ("failed-no-exit", _job(("Failed", "BackoffLimitExceeded")), [], INC),
    ("evicted-pod", _job(("Failed", "PodFailurePolicy")), [_pod()], INC),
    ("image-pull", _job(), [_pod(waiting="ErrImagePull")], INC),
    ("image-backoff", _job(), [_pod(waiting="ImagePullBackOff")], INC),
    ("never-pull", _job(), [_pod(waiting="ErrImageNeverPull")], INC),
    ("config-error", _job(), [_pod(waiting="CreateContainerConfigError")], INC),
    ("unschedulable-long", _job(), [_pod(unschedulable_for=120)], INC),
    ("gone", None, [], INC),
    ("running", _job(), [_pod()], None),
    ("pending-no-pod", _job(), [], None),
    ("unschedulable-briefly", _job(), [_pod(unschedulable_for=5)], None),
    ("container-creating", _job(), [_pod(waiting="ContainerCreating")], None),
]


@pytest.mark.parametrize(
    ("job", "pods", "verdict"), [c[1:] for c in JOBS], ids=[c[0] for c in JOBS]
)
def test_job_outcomes(job: dict[str, Any] | None, pods: list[Any], verdict: Verdict | None) -> None:
    judgement = judge_job(job, pods, NOW)
    if verdict is None:
        assert judgement is None
    else:
        assert judgement is not None and judgement.verdict is verdict, judgement
        assert judgement.verdict is not P or job is not None


def test_job_failure_names_the_exit_code_and_the_termination_message() -> None:
    judgement = judge_job(_job(("Failed", "BackoffLimitExceeded")), [_pod(EXIT_3)], NOW)
    assert judgement is not None
    assert "exited with code 3" in judgement.message
    assert "checkout answered 500" in judgement.message


SOURCE = JobSource.model_validate(
    {
        "activeDeadlineSeconds": 45,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "smoke",
                        "image": "x",
                        "env": [{"name": "RAMP_ROLLOUT", "value": "no"}],
                    }
                ]
            }
        },
    }
)
CONTEXT = QueryContext("checkout", "shop", canary_revision="c1", stable_revision="s1")
RUN = MeasurementId(
    uid="uid-1", analysis="step-0", started="t0", attempt=2, services={"canary": "co-canary"}
)


def test_job_has_a_deadline_no_retries_an_owner_and_the_environment() -> None:
    job = build_job(SOURCE, "n", CONTEXT, RUN, "smoke")
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 45 and spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("Rollout", "uid-1")
    env = {e["name"]: e["value"] for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["RAMP_ROLLOUT"] == "checkout"  # ours win over the template's
    assert env["RAMP_CANARY_SERVICE"] == "co-canary"
    assert env["RAMP_CANARY_REVISION"] == "c1" and env["RAMP_STABLE_REVISION"] == "s1"
    assert env["RAMP_ATTEMPT"] == "2"


NAMES = [
    ("same", ("r", "u", "rev", "step-0", "m", 1), True),
    ("other-uid", ("r", "u2", "rev", "step-0", "m", 1), False),
    ("other-revision", ("r", "u", "rev2", "step-0", "m", 1), False),
    ("other-step", ("r", "u", "rev", "step-2", "m", 1), False),
    ("other-attempt", ("r", "u", "rev", "step-0", "m", 2), False),
]


@pytest.mark.parametrize(("args", "same"), [c[1:] for c in NAMES], ids=[c[0] for c in NAMES])
def test_job_name_identifies_the_measurement(args: tuple[Any, ...], same: bool) -> None:
    assert (job_name(*args) == job_name("r", "u", "rev", "step-0", "m", 1)) is same


@pytest.mark.parametrize("rollout", ["a", "x" * 253, "a.b.c", "-weird-"])
def test_job_names_always_fit(rollout: str) -> None:
    import re

    name = job_name(rollout, "u", "r", "background", "M" * 63, 1000)
    assert len(name) <= 52
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


def test_doctests_of_the_check_modules() -> None:
    import doctest

    from ramp.analysis import checkhttp, jobcheck, web, webhook

    for module in (checkhttp, jobcheck, web, webhook):
        failures, _ = doctest.testmod(module)
        assert failures == 0, module.__name__


def test_kubectl_ramp_get_shows_a_check_in_the_decision_record() -> None:
    """A job check's record (its exit code as the value, the Job, the container's words)
    and a webhook's 202 are shown like any measurement by ``kubectl ramp get``."""
    from ramp.cli.render import render_text

    rollout = {
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"strategy": {"canary": {"steps": [{"analysis": {"metrics": []}}]}}},
        "status": {
            "phase": "Aborted",
            "measurements": [
                {
                    "metric": "smoke",
                    "analysis": "step-0",
                    "verdict": "Fail",
                    "time": "2026-12-06T09:00:00Z",
                    "value": "exit 3",
                    "query": "job checkout-smoke-1-8dac3340c5",
                    "message": "smoke: Job checkout-smoke-1-8dac3340c5: container smoke "
                    "exited with code 3: GET / answered 500",
                },
                {
                    "metric": "approval",
                    "analysis": "step-0",
                    "verdict": "Inconclusive",
                    "time": "2026-12-06T09:00:01Z",
                    "message": "approval: the hook answered 202 (accepted, later): not a verdict",
                },
            ],
        },
    }
    text = render_text(rollout, width=250)
    assert "exit 3" in text and "exited with code 3: GET / answered 500" in text
    assert "Inconclusive" in text and "202 (accepted, later)" in text
