"""Hostile strings from a Rollout reach ``kubectl ramp``'s output inert (issue 20).

Whoever writes a Rollout (or the Events about it, or the answers of its metrics) chooses
the strings the admin's terminal shows. Each test reads the output BYTES: no escape
sequence but Rich's own styles, no BEL, no CR, no bidi override, and Rich markup shown as
the characters it is.
"""

from __future__ import annotations

import importlib
import io
import re
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from ramp.cli.dashboard import pages, views
from ramp.cli.facts import progress_line
from ramp.cli.render import render, render_text, rollouts_table, to_text
from ramp.cli.safe import SafeConsole, visible, visible_obj

cli_main = importlib.import_module("ramp.cli.main")  # (ramp.cli.main is also a function)
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # sets the clipboard to "rm -rf ~"
HOSTILE = (
    f"pwn{OSC52} [/bold] [link=http://evil]x[/link] \x1b[2J\rHealthy\n12:00 fake line "
    "\u202eevil\u202c \x9b31m \x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ :smile: \ud800"
)
"""OSC 52 (clipboard), markup that used to crash (``[/bold]``), a link in markup, a screen
clear, a CR and a newline that forge a line, a bidi override, an 8-bit CSI, an OSC 8
hyperlink, an emoji code and a lone surrogate."""

SGR = re.compile(rb"\x1b\[[0-9;]*m")
"""The only escape sequences allowed in the output: Rich's own colours (on a terminal)."""


def assert_inert(data: bytes, keep_sgr: bool = False, raw: bool = False) -> None:
    rest = SGR.sub(b"", data) if keep_sgr else data
    for bad in (b"\x1b", b"\x07", b"\r", b"\xc2\x9b", "\u202e".encode(), b"\xed\xa0\x80"):
        assert bad not in rest, (bad, data)
    text = data.decode()
    assert "[/bold]" in text and "[link=http://evil]x[/link]" in text  # markup shown as text
    assert "\\x1b]52;c;cm0gLXJmIH4K\\x07" in text  # the sequence, visibly
    assert "\\u202eevil" in text and ":smile:" in text
    if not raw:  # a string printed as such keeps its lines; a string of an object does not
        assert "\n12:00 fake line" not in text  # the newline is shown, it starts no line


def hostile_rollout() -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 2},
        "spec": {
            "replicas": 4,
            "template": {"spec": {"containers": [{"name": "app", "image": f"img{OSC52}"}]}},
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 25},
                        {"analysis": {"metrics": [{"name": "m", "successCondition": "true"}]}},
                    ]
                }
            },
        },
        "status": {
            "observedGeneration": 2,
            "phase": "Progressing",
            "message": HOSTILE,
            "stableRevision": "aaaa",
            "canaryRevision": "bbbb",
            "currentStepIndex": 1,
            "abortReason": "AnalysisFailed",
            "abortMessage": HOSTILE,
            "measurements": [
                {
                    "metric": f"m{OSC52}",
                    "analysis": "step-2",
                    "value": HOSTILE,
                    "verdict": "Error",
                    "message": HOSTILE,
                    "time": "2025-03-01T11:59:00Z",
                }
            ],
            "conditions": [
                {"type": "Progressing", "status": "True", "reason": HOSTILE, "message": HOSTILE}
            ],
        },
    }


EVENTS = [
    {
        "metadata": {"name": "web.1", "namespace": "shop", "resourceVersion": "1"},
        "type": "Warning",
        "reason": f"Injected{OSC52}",
        "message": HOSTILE,
        "lastTimestamp": "2025-03-01T11:59:30Z",
    }
]


def test_visible_escapes_controls_and_keeps_printable_text() -> None:
    assert visible("état ✔ 日本 [b]") == "état ✔ 日本 [b]"
    assert visible("a\x1bb\x07\r\n\t\x7f\x9b") == "a\\x1bb\\x07\\r\\n\\t\\x7f\\x9b"
    assert visible("x\u202ey\u2066\U000e0041") == "x\\u202ey\\u2066\\U000e0041"
    assert visible("a\nb", keep_newlines=True) == "a\nb"
    data = {"k\x1b": ["v\x07", 3, None, {"x": "\r"}]}
    assert visible_obj(data) == {"k\\x1b": ["v\\x07", 3, None, {"x": "\\r"}]}
    assert data == {"k\x1b": ["v\x07", 3, None, {"x": "\r"}]}  # a copy: the object is unchanged


def test_plain_detailed_view_bytes_are_inert() -> None:
    text = render_text(hostile_rollout(), [], EVENTS, NOW, width=400)
    assert_inert(text.encode())


def test_terminal_view_bytes_carry_only_richs_own_colours() -> None:
    """On a terminal (colours, the live view's console): the same, Rich's SGR aside."""
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, color_system="truecolor", width=400)
    console.print(render(hostile_rollout(), [], EVENTS, NOW, compact=None))
    data = buffer.getvalue().encode()
    assert SGR.search(data)  # it is a terminal rendering
    assert_inert(data, keep_sgr=True)


def test_safe_console_guards_strings_that_reach_it_raw() -> None:
    """A string renderable (e.g. a frame's error line) is neither markup nor controls."""
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, color_system="truecolor", width=400)
    console.print(HOSTILE)
    assert_inert(buffer.getvalue().encode(), keep_sgr=True, raw=True)
    assert_inert(to_text(HOSTILE, 400).encode(), raw=True)


def test_list_and_progress_line_are_inert() -> None:
    table = to_text(rollouts_table([hostile_rollout()], namespaces=True), 400)
    assert "\x1b" not in table and "\x07" not in table
    line = progress_line(hostile_rollout())
    assert_inert(line.encode())


def _run_cli(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[bytes], argv: list[str]
) -> tuple[int, bytes, bytes]:
    class FakeKube:  # the API's answers, for this one function's output
        namespace = "shop"

        def get(self, name: str) -> dict[str, Any]:
            return hostile_rollout()

        def list_rollouts(self, all_namespaces: bool) -> list[dict[str, Any]]:
            return [hostile_rollout()]

        def deployments(self, name: str) -> list[dict[str, Any]]:
            return []

        def events(self, name: str, uid: Any) -> list[dict[str, Any]]:
            return EVENTS

        def request(self, name: str, verb: str) -> str:
            raise cli_main.CliError(f"refused: {HOSTILE}")

    monkeypatch.setattr(cli_main.Commands, "kube", property(lambda self: FakeKube()))
    code = cli_main.main(argv)
    sys.stdout.flush()
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [["get", "web"], ["get"], ["get", "web", "-A"], ["abort", "web"]],
    ids=["get-NAME", "get", "get-A", "error-message"],
)
def test_cli_output_bytes_are_inert(
    monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes], argv: list[str]
) -> None:
    code, out, err = _run_cli(monkeypatch, capfdbinary, argv)
    for stream in (out, err):
        assert b"\x1b" not in stream and b"\x07" not in stream and b"\r" not in stream
    if argv == ["get", "web"]:
        assert code == 0
        assert_inert(out)
    if argv[0] == "abort":
        assert code == 1 and b"[/bold]" in err


def test_dashboard_detail_page_escapes_every_string() -> None:
    rollout = hostile_rollout()
    rollout["status"]["message"] = '<img src=x onerror="alert(1)"> [/bold]'
    events = [{**EVENTS[0], "message": "<script>steal()</script>"}]
    view = views.detail(rollout, [], events, [], [], [], [])
    html = pages.detail_page("shop", "web", view, "namespace shop", "csrf")
    assert "<script>steal" not in html and "&lt;script&gt;steal()" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
