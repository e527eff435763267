"""``kubectl ramp`` connects like kubectl: kubeconfig, context, namespace (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ramp.cli import build_parser
from ramp.cli.client import CliError, connect

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [
        {"name": "shop", "context": {"cluster": "c", "user": "u", "namespace": "shop"}},
        {"name": "bare", "context": {"cluster": "c", "user": "u"}},
    ],
    "current-context": "shop",
}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return str(path)


@pytest.mark.parametrize(
    ("context", "namespace", "expected"),
    [
        (None, None, "shop"),  # the current context's namespace
        ("bare", None, "default"),  # a context without one: default
        ("bare", "x", "x"),  # -n wins
        (None, "y", "y"),
    ],
    ids=["current-context", "context-without-namespace", "flag-with-context", "flag"],
)
def test_namespace_is_resolved_like_kubectl(
    kubeconfig: str, context: str | None, namespace: str | None, expected: str
) -> None:
    api_client, resolved = connect(kubeconfig, context, namespace)
    assert resolved == expected
    assert api_client.configuration.host == "https://127.0.0.1:6443"


def test_unknown_context_is_an_error_naming_the_known_ones(kubeconfig: str) -> None:
    with pytest.raises(CliError, match=r"context 'nope' is not in the kubeconfig.*shop, bare"):
        connect(kubeconfig, "nope", None)


def test_connection_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "a", "--context", "c", "get"])
    after = parser.parse_args(["get", "-n", "a", "--context", "c"])
    nested = parser.parse_args(["set", "image", "web", "app=x:1", "-n", "a", "--context", "c"])
    for args in (before, after, nested):
        assert (args.namespace, args.context) == ("a", "c")
    assert nested.images == ["app=x:1"]


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for argv in (
        [],
        ["get"],
        ["promote"],
        ["abort"],
        ["retry"],
        ["pause"],
        ["resume"],
        ["set"],
        ["set", "image"],
        ["undo"],
        ["status"],
        ["plan"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*argv, "--help"])
        assert exit_info.value.code == 0
        assert "usage: kubectl ramp" in capsys.readouterr().out
