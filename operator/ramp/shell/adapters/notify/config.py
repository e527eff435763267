"""Notification settings: sinks from a ConfigMap, their URLs and tokens from a Secret.

Pure: parsing and checking only (no API calls, no HTTP). The ConfigMap's key
``notifications.yaml`` reads::

    sinks:
      - name: ops                    # [a-z0-9-], unique
        type: webhook                # webhook (JSON) | cloudevents (1.0, structured) | slack
        urlKey: ops-url              # key of the Secret that holds the URL
        tokenKey: ops-token          # optional: key of a bearer token (Authorization header)
        triggers: [started, paused, aborted, completed, analysis]   # the default
        optIn: false                 # true: only Rollouts annotated ramp.dev/notify: ops
        namespaces: []               # only Rollouts of these namespaces (required with optIn)
    delivery: {maxAttempts: 6, initialBackoff: 1s, maxBackoff: 30s, timeout: 5s, queueSize: 1000}

A sink URL must be on the operator's allow-list (``--notify-allow``, ``RAMP_NOTIFY_ALLOW``):
entries are ``scheme://host[:port][/path-prefix]``; a URL is allowed when scheme, host and
port are equal and its path starts with the entry's path. Paths are compared normalised
(percent-encoded unreserved characters decoded, ``.`` and ``..`` segments resolved, as the
HTTP client and the receiver will), encoded slashes and backslashes are refused, the
normalised URL is the one posted to, and redirects are not followed: so neither a Secret
nor a receiver can send the operator to an arbitrary address inside the cluster (no SSRF).
Messages about a URL name its origin only: the path of an incoming-webhook URL is itself a
secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from ramp.api.durations import parse_duration

ALLOW_ENV = "RAMP_NOTIFY_ALLOW"
CONFIG_KEY = "notifications.yaml"
SINK_TYPES = ("webhook", "cloudevents", "slack")
TRIGGERS = (
    "started",
    "paused",
    "resumed",
    "aborted",
    "completed",
    "rolledBack",
    "analysis",
    "step",
)
DEFAULT_TRIGGERS = ("started", "paused", "aborted", "completed", "analysis")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PORTS = {"http": 80, "https": 443}


class ConfigError(ValueError):
    """The notification settings are wrong (the message never holds a URL path or token)."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def allows(self, other: Origin) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        prefix = self.path.rstrip("/")
        return not prefix or other.path == prefix or other.path.startswith(prefix + "/")


_UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|5[fF]|7[eE]|[46][1-9a-fA-F]|[57][0-9aA]|3[0-9])")
_REFUSED_IN_PATH = re.compile(r"%(2f|5c|00)|\\", re.IGNORECASE)


def normal_path(path: str, what: str = "URL") -> str:
    """A URL path as an HTTP client and a server resolve it (RFC 3986 6.2.2): escapes of
    unreserved characters decoded, ``.`` and ``..`` segments removed. Encoded slashes,
    backslashes and NULs are refused (servers differ on them).

    >>> normal_path("/services/T0/../../admin"), normal_path("/a/%2e%2E/b/./c/")
    ('/admin', '/b/c/')
    """
    if _REFUSED_IN_PATH.search(path) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
        raise ConfigError(f"{what} has an encoded slash, a backslash or a control character")
    path = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)
    out: list[str] = []
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments and segments[-1] in (".", ".."):
        out.append("")
    return "/" + "/".join(out)


def normal_url(url: str, what: str = "URL") -> str:
    """The URL the operator posts to: scheme and host lower-case, the path normalised
    (:func:`normal_path`), no fragment; the same checks as :func:`parse_origin`.

    >>> normal_url("HTTPS://Hooks.Example:443/services/T0/./B0/../B1?x=1#f")
    'https://hooks.example/services/T0/B1?x=1'
    """
    origin = parse_origin(url, what)
    parts = urlsplit(url.strip())
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    netloc = host if origin.port == _PORTS[origin.scheme] else f"{host}:{origin.port}"
    return urlunsplit((origin.scheme, netloc, origin.path, parts.query, ""))


def parse_origin(url: str, what: str = "URL") -> Origin:
    """Scheme, host, explicit port and path of an http(s) URL; ConfigError otherwise.

    >>> str(parse_origin("HTTPS://Hooks.Example/services/x"))
    'https://hooks.example:443'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise ConfigError(f"{what} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{what} carries credentials in the URL; use tokenKey")
    if not parts.hostname:
        raise ConfigError(f"{what} has no host")
    try:
        port = parts.port or _PORTS[scheme]
    except ValueError:
        raise ConfigError(f"{what} has an invalid port") from None
    return Origin(scheme, parts.hostname.lower(), port, normal_path(parts.path or "/", what))


@dataclass(frozen=True)
class AllowList:
    entries: tuple[Origin, ...] = ()

    @classmethod
    def from_env_and_args(
        cls, allow: Iterable[str] = (), env: Mapping[str, str] | None = None
    ) -> AllowList:
        env = os.environ if env is None else env
        raw = [*allow, *env.get(ALLOW_ENV, "").split(",")]
        entries = []
        for entry in raw:
            if entry.strip():
                entries.append(parse_origin(entry, f"allow-list entry {entry.strip()!r}"))
        return cls(tuple(entries))

    def refusal(self, url: str, sink: str) -> str | None:
        """Why ``url`` may not be used by ``sink``, or None when it is allowed."""
        try:
            origin = parse_origin(url, f"the URL of sink {sink}")
        except ConfigError as exc:
            return str(exc)
        if any(entry.allows(origin) for entry in self.entries):
            return None
        return (
            f"the URL of sink {sink} ({origin}) is not on the notification allow-list "
            f"(--notify-allow / {ALLOW_ENV})"
        )


@dataclass(frozen=True)
class Delivery:
    max_attempts: int = 6
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 5.0
    queue_size: int = 1000


@dataclass(frozen=True)
class Sink:
    name: str
    type: str
    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    triggers: frozenset[str] = frozenset(DEFAULT_TRIGGERS)
    opt_in: bool = False
    namespaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Settings:
    sinks: tuple[Sink, ...] = ()
    refused: tuple[str, ...] = ()
    """Why sinks were left out (one line each, no secret)."""
    delivery: Delivery = Delivery()


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_duration(str(value)).total_seconds()
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not a duration") from None


def _delivery(raw: Any) -> Delivery:
    if raw is None:
        return Delivery()
    if not isinstance(raw, dict):
        raise ConfigError("delivery must be a mapping")
    d = Delivery()
    out = Delivery(
        max_attempts=int(raw.get("maxAttempts", d.max_attempts)),
        initial_backoff=_seconds(raw.get("initialBackoff", d.initial_backoff), "initialBackoff"),
        max_backoff=_seconds(raw.get("maxBackoff", d.max_backoff), "maxBackoff"),
        timeout=_seconds(raw.get("timeout", d.timeout), "timeout"),
        queue_size=int(raw.get("queueSize", d.queue_size)),
    )
    if not (1 <= out.max_attempts <= 20 and 1 <= out.queue_size <= 100_000):
        raise ConfigError("delivery: maxAttempts must be 1..20 and queueSize 1..100000")
    if out.initial_backoff <= 0 or out.max_backoff < out.initial_backoff or out.timeout <= 0:
        raise ConfigError("delivery: backoffs and timeout must be positive, max >= initial")
    return out


def parse_settings(
    config_text: str | None, secret: Mapping[str, str], allow: AllowList
) -> Settings:
    """The sinks of the ConfigMap's YAML, with URLs and tokens from the Secret's (decoded)
    data. A sink that is wrong or not allowed is left out and said why in ``refused``; a
    ConfigMap that does not parse at all raises ConfigError."""
    try:
        raw = yaml.safe_load(config_text or "") or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{CONFIG_KEY} is not YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONFIG_KEY} must be a mapping with 'sinks'")
    delivery = _delivery(raw.get("delivery"))
    sinks: list[Sink] = []
    refused: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(raw.get("sinks") or []):
        name = str((item or {}).get("name", "")) if isinstance(item, dict) else ""
        label = name or f"#{i + 1}"
        try:
            if not isinstance(item, dict):
                raise ConfigError("must be a mapping")
            if not _NAME.match(name) or name in seen:
                raise ConfigError("needs a unique name of lower-case letters, digits and '-'")
            kind = str(item.get("type", "webhook"))
            if kind not in SINK_TYPES:
                raise ConfigError(f"type {kind!r} is not one of {', '.join(SINK_TYPES)}")
            url_key = str(item.get("urlKey") or "")
            url = (secret.get(url_key) or "").strip()
            if not url:
                raise ConfigError(f"the Secret has no key {url_key!r} (urlKey)")
            token = None
            if item.get("tokenKey"):
                token = (secret.get(str(item["tokenKey"])) or "").strip()
                if not token:
                    raise ConfigError(f"the Secret has no key {item['tokenKey']!r} (tokenKey)")
            triggers = item.get("triggers") or list(DEFAULT_TRIGGERS)
            unknown = sorted(set(map(str, triggers)) - set(TRIGGERS))
            if unknown:
                raise ConfigError(f"unknown triggers {unknown} (known: {', '.join(TRIGGERS)})")
            why = allow.refusal(url, name)
            if why is not None:
                raise ConfigError(why)
            url = normal_url(url, f"the URL of sink {name}")
            opt_in = bool(item.get("optIn", False))
            if opt_in and not item.get("namespaces"):
                raise ConfigError(
                    "optIn needs namespaces: the namespaces whose Rollouts may opt in "
                    "(else any namespace could send to it with ramp.dev/notify: all)"
                )
            sinks.append(
                Sink(
                    name=name,
                    type=kind,
                    url=url,
                    token=token,
                    triggers=frozenset(map(str, triggers)),
                    opt_in=opt_in,
                    namespaces=frozenset(map(str, item.get("namespaces") or [])),
                )
            )
            seen.add(name)
        except ConfigError as exc:
            message = str(exc)
            prefix = f"the URL of sink {label}"
            refused.append(message if message.startswith(prefix) else f"sink {label}: {message}")
    return Settings(tuple(sinks), tuple(refused), delivery)
