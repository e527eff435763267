"""Logging set-up: human-readable text, or one JSON object per line (``--log-format json``).

A JSON line has ``time`` (UTC, RFC 3339 with milliseconds), ``level``, ``logger``,
``message``; ``object`` (``{"namespace", "name", "kind"}``) when kopf logs about a resource;
``exception`` with the traceback when there is one. Nothing else is added, so a log
pipeline can parse every line the operator writes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            out["object"] = {
                k: ref[k] for k in ("namespace", "name", "kind") if ref.get(k) is not None
            }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(log_format: str = "text", verbose: bool = False) -> None:
    """Route every logger (ours, kopf's, the clients', warnings) to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)
    # The HTTP clients are chatty at DEBUG and say nothing useful at INFO.
    for noisy in ("urllib3", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["JsonFormatter", "configure"]
