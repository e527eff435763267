"""``kubectl ramp dashboard``: a local web UI (see :mod:`ramp.cli.dashboard.server`)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import webbrowser
from typing import Any

from ramp.cli.client import CliError
from ramp.cli.dashboard.server import Dashboard, serve


def run(
    api_client: Any, namespace: str, all_namespaces: bool, port: int, open_browser: bool
) -> int:
    """Serve the dashboard until interrupted; prints its URL (with the access token)."""
    started = time.monotonic()
    dashboard = Dashboard(api_client, namespace, all_namespaces)

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
                webbrowser.open(url)

        await serve(dashboard, port, ready, stop)

    try:
        asyncio.run(main())
    except OSError as exc:  # the port is taken, say
        raise CliError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    return 0


__all__ = ["Dashboard", "run"]
