"""The dashboard's HTML pages (readable without JavaScript), from Jinja templates that
escape every value (``templates/``); the data comes from :mod:`ramp.cli.dashboard.views`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"

LIST_COLUMNS = (
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("phase", "Phase"),
    ("strategy", "Strategy"),
    ("step", "Step"),
    ("weight", "Weight (desired/actual)"),
    ("ready", "Ready"),
    ("message", "Message"),
)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.Undefined,
    finalize=lambda value: "" if value is None else value,
    trim_blocks=True,
    keep_trailing_newline=True,
)


def _render(template: str, **values: Any) -> str:
    return _env.get_template(template).render(**values)


def list_page(
    rows: Sequence[Mapping[str, Any]],
    namespace: str | None,
    namespaces: Sequence[str],
    context: str,
    csrf: str,
    error: str | None = None,
) -> str:
    return _render(
        "list.html",
        title="Rollouts",
        page="list",
        data={"namespace": namespace or ""},
        context=context,
        csrf=csrf,
        rows=rows,
        namespace=namespace,
        namespaces=namespaces,
        columns=LIST_COLUMNS,
        error=error,
    )


def detail_page(namespace: str, name: str, view: Mapping[str, Any], context: str, csrf: str) -> str:
    return _render(
        "detail.html",
        title=f"{namespace}/{name}",
        page="detail",
        data={"namespace": namespace, "name": name},
        context=context,
        csrf=csrf,
        namespace=namespace,
        name=name,
        view=view,
    )


def error_page(namespace: str, name: str, message: str, context: str, csrf: str) -> str:
    return _render(
        "error.html",
        title=name,
        page="error",
        data={},
        context=context,
        csrf=csrf,
        namespace=namespace,
        name=name,
        message=message,
    )
