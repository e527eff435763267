"""``/metrics`` on the real cluster answers only a token RBAC allows (issue 20).

The operator runs as the chart's ServiceAccount with the chart's arguments (namespace
scope), so the chart's own RBAC must let it ask the API server (TokenReview,
SubjectAccessReview). Then, from outside: no token, a token nobody issued, and the token
of a ServiceAccount without ``get`` on ``/metrics`` are refused without a single series;
the token of a ServiceAccount bound to ``nonResourceURLs: ["/metrics"], verbs: ["get"]``
(Prometheus' usual rule) reads them. The probes answer on their own port, without a token.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from ramp_chart import (
    can_i,
    container_args,
    helm_install,
    local_args,
    scratch_namespace,
    service_account_kubeconfig,
)
from ramp_e2e import OperatorProcess, metrics_reader_token

from cluster.fixtures import ClusterHandle


def get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_refuse_no_token_and_a_token_rbac_denies_and_answer_one_it_allows(
    cluster: ClusterHandle, crds: None, tmp_path: Path
) -> None:
    allowed, denied = metrics_reader_token(), metrics_reader_token(allowed=False)
    with scratch_namespace(cluster, "mauth") as ns:
        objects = helm_install(cluster, "ramp", ns, "--set", "scope=namespace")
        sa = f"{ns}/ramp"
        assert can_i(cluster, sa, "create", "tokenreviews.authentication.k8s.io")
        assert can_i(cluster, sa, "create", "subjectaccessreviews.authorization.k8s.io")
        args = local_args(container_args(objects, "ramp"))
        assert "--metrics-auth=kubernetes" in args, args
        kubeconfig = service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kc")
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", args)
        operator.start()
        try:
            url = operator.metrics_url() + "/metrics"
            started = time.monotonic()
            answers = {
                "no token": get(url),
                "unknown token": get(url, "not-a-token-anyone-issued"),
                "denied by RBAC": get(url, denied),
                "allowed by RBAC": get(url, allowed),
            }
            took = time.monotonic() - started
            print(f"\n/metrics answers: { {k: v[0] for k, v in answers.items()} } in {took:.2f}s")
            assert answers["no token"][0] == 401
            assert answers["unknown token"][0] == 401
            assert answers["denied by RBAC"][0] == 403
            assert "ramp-e2e-metrics-reader-denied" in answers["denied by RBAC"][1]
            for key in ("no token", "unknown token", "denied by RBAC"):
                assert "ramp_" not in answers[key][1], key
            assert answers["allowed by RBAC"][0] == 200
            assert "ramp_leader " in answers["allowed by RBAC"][1]

            probes = operator.probes_url()
            assert get(probes + "/healthz")[0] == 200 and get(probes + "/readyz")[0] == 200
            assert get(probes + "/metrics")[0] == 404  # no series on the open port
            log = operator.log_text()
            assert allowed not in log and denied not in log  # tokens never logged
            assert "Forbidden" not in log, operator.tail()
        finally:
            operator.stop()
