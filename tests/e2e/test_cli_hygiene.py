"""``kubectl ramp`` shows a tenant's strings inert, on the real cluster (issue 20).

A namespace owner may create Events about their own Rollout: whatever the message says,
the admin's terminal must show it as text. The command runs as the installed plugin, piped
(plain text) and on a pseudo-terminal (colours, and the live ``--watch`` view), and the
test reads the BYTES it writes: no escape sequence but Rich's own colours, no BEL, no CR,
Rich markup shown as written.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from ramp_e2e import Rollouts, rollout_manifest

from cluster.fixtures import ClusterHandle

PLUGIN = Path(sys.executable).with_name("kubectl-ramp")
OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # would put "rm -rf ~" in the admin's clipboard
HOSTILE = f"pwn{OSC52} [/bold] [red]x \x1b[2J\r\nforged line \u202eevil \x1b]8;;http://evil\x1b\\"
SGR = re.compile(rb"\x1b\[[0-9;]*m")
RICH_CONTROL = re.compile(rb"\x1b\[(\?25[lh]|[0-9]*[ABCDGKJ]|2K)|\r")
"""What Rich itself writes on a terminal besides colours: cursor hide/show and moves of the
live view (and its CRs)."""


def run_on_pty(args: list[str], timeout: float = 60) -> bytes:
    """The bytes a command writes to a terminal (80x200)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "60"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
    return out


def assert_inert(data: bytes, terminal: bool) -> None:
    rest = SGR.sub(b"", data)
    if terminal:
        rest = RICH_CONTROL.sub(b"", rest.replace(b"\r\n", b"\n"))
    assert b"\x1b" not in rest, data
    assert b"\x07" not in rest and b"\r" not in rest and "\u202e".encode() not in rest, data
    text = data.decode()
    assert "[/bold] [red]x" in text and "\\x1b]52;c;cm0gLXJmIH4K\\x07" in text, text
    assert "\\u202eevil" in text and "\\r\\nforged line" in text


def test_hostile_event_messages_reach_the_terminal_inert(
    cluster: ClusterHandle, rollouts: Rollouts
) -> None:
    rollouts.create(rollout_manifest("web", replicas=2, steps=[{"setWeight": 50}]))
    rollouts.wait_healthy("web", 2)
    uid = rollouts.get("web")["metadata"]["uid"]
    rollouts.core.create_namespaced_event(
        rollouts.ns,
        {
            "metadata": {"generateName": "web."},
            "involvedObject": {
                "apiVersion": "ramp.dev/v1alpha1",
                "kind": "Rollout",
                "name": "web",
                "namespace": rollouts.ns,
                "uid": uid,
            },
            "reason": "Injected",
            "message": HOSTILE,
            "type": "Warning",
            "firstTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"component": "tenant"},
        },
    )
    base = [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", rollouts.ns]

    piped = subprocess.run([*base, "get", "web"], capture_output=True, timeout=60, check=True)
    assert b"Injected" in piped.stdout
    assert_inert(piped.stdout, terminal=False)

    on_terminal = run_on_pty([*base, "get", "web"])
    assert SGR.search(on_terminal), on_terminal  # a terminal: Rich's colours are on
    assert_inert(on_terminal, terminal=True)

    live = run_on_pty([*base, "get", "web", "--watch", "--timeout", "3s"])
    assert b"Injected" in live
    assert_inert(live, terminal=True)
