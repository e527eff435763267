"""``kubectl ramp dashboard``: a local web UI (see :mod:`ramp.cli.dashboard.server`)."""

from __future__ import annotations

import asyncio
import html
import json
import os
import signal
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from typing import Any

from ramp.cli.client import CliError
from ramp.cli.dashboard.server import Dashboard, serve


def redirect_file(url: str) -> Path:
    """A page readable by this user only that sends the browser on to ``url``."""
    fd, name = tempfile.mkstemp(prefix="ramp-dashboard-", suffix=".html")  # mode 0600
    target = json.dumps(url)
    with os.fdopen(fd, "w") as out:
        out.write(
            "<!doctype html><meta charset=utf-8><title>Ramp dashboard</title>"
            f"<script>location.replace({target})</script>"
            f'<p><a href="{html.escape(url)}">Open the Ramp dashboard</a></p>\n'
        )
    return Path(name)


def open_without_token_in_argv(url: str) -> Path:
    """Open ``url`` in a browser without putting it on the browser's command line (which
    every local user can read in ``ps``): the browser gets a file that redirects to it."""
    page = redirect_file(url)
    webbrowser.open(page.as_uri())
    return page


def run(
    api_client: Any, namespace: str, all_namespaces: bool, port: int, open_browser: bool
) -> int:
    """Serve the dashboard until interrupted; prints its URL (with the access token)."""
    started = time.monotonic()
    dashboard = Dashboard(api_client, namespace, all_namespaces)
    opened: list[Path] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(url: str) -> None:
            took = (time.monotonic() - started) * 1000
            print(f"Ramp dashboard for {dashboard.scope()}: {url}", flush=True)
            print(
                f"  (serving on 127.0.0.1 only, ready in {took:.0f} ms; Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
            if open_browser:
                opened.append(open_without_token_in_argv(url))

        await serve(dashboard, port, ready, stop)

    try:
        asyncio.run(main())
    except OSError as exc:  # the port is taken, say
        raise CliError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    finally:
        for page in opened:
            page.unlink(missing_ok=True)
    return 0


__all__ = ["Dashboard", "open_without_token_in_argv", "redirect_file", "run"]
