"""Notifications: rollout events sent to webhooks, CloudEvents receivers and Slack.

Sinks come from a ConfigMap (``--notify-config NAMESPACE/NAME``), their URLs and tokens
from a Secret (``--notify-secret NAMESPACE/NAME``, by default the ConfigMap's name), and a
URL must be on the allow-list (``--notify-allow``). See
:mod:`ramp.shell.adapters.notify.config` for the format,
:mod:`ramp.shell.adapters.notify.messages` for the payloads and the per-Rollout
annotations, and :mod:`ramp.shell.adapters.notify.notifier` for delivery.

The operator wires it in with one call (:func:`from_settings`), which makes the notifier one
of the adapter's event sinks (every Event the operator posts, every status it writes) and
returns it; its ``run()`` is one of the operator's tasks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from ramp.shell.adapters.notify.config import (
    CONFIG_KEY,
    AllowList,
    ConfigError,
    Settings,
    parse_settings,
)
from ramp.shell.adapters.notify.notifier import Notifier


def _ref(text: str, flag: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name:
        raise SystemExit(f"{flag}: expected NAMESPACE/NAME, got {text!r}")
    return namespace, name


def loader(
    core: Any, config_ref: str, secret_ref: str | None, allow: AllowList
) -> Callable[[], Settings]:
    """A function that reads the ConfigMap and the Secret and returns the settings."""
    cm_ns, cm_name = _ref(config_ref, "--notify-config")
    sec_ns, sec_name = _ref(secret_ref, "--notify-secret") if secret_ref else (cm_ns, cm_name)

    def load() -> Settings:
        config_map = core.read_namespaced_config_map(cm_name, cm_ns)
        text = (config_map.data or {}).get(CONFIG_KEY)
        data: dict[str, str] = {}
        try:
            secret = core.read_namespaced_secret(sec_name, sec_ns)
            for key, value in (secret.data or {}).items():
                data[key] = base64.b64decode(value).decode()
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
        return parse_settings(text, data, allow)

    return load


@dataclass(frozen=True)
class NotifySettings:
    """``--notify-config``, ``--notify-secret``, ``--notify-allow`` (parsed in
    ``ramp.__main__``)."""

    config: str | None = None
    secret: str | None = None
    allow: tuple[str, ...] = ()


def from_settings(
    settings: NotifySettings, kube: Any, registry: CollectorRegistry | None
) -> Notifier | None:
    """The notifier of the operator's settings, one of ``kube``'s event sinks; None when
    ``--notify-config`` is not given. A ConfigMap that cannot be read or parsed stops the
    operator at start-up, naming the flag (a wrong sink only turns that sink off)."""
    config_ref = settings.config
    if not config_ref:
        return None
    try:
        allow = AllowList.from_env_and_args(list(settings.allow))
    except ConfigError as exc:
        raise SystemExit(f"--notify-allow: {exc}") from None
    load = loader(kube.core, config_ref, settings.secret, allow)
    try:
        loaded = load()
    except ConfigError as exc:
        raise SystemExit(f"--notify-config {config_ref}: {exc}") from None
    except Exception as exc:
        raise SystemExit(
            f"--notify-config {config_ref}: cannot read the ConfigMap or Secret "
            f"({getattr(exc, 'reason', type(exc).__name__)})"
        ) from None
    notifier = Notifier(loaded, registry, reload=load)
    notifier.attach(kube)
    return notifier


__all__ = ["Notifier", "NotifySettings", "from_settings", "loader"]
