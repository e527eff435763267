"""Which Prometheus servers the operator may query, for which namespaces, with what.

The cluster admin configures this, never a tenant: the operator's flags
(``--prometheus-allow`` / ``RAMP_PROMETHEUS_ALLOW`` with ``--prometheus-token-secret``, one
token for every allowed address) and, per address, a list of providers
(``--prometheus-providers FILE`` or ``RAMP_PROMETHEUS_PROVIDERS``, YAML or JSON; the chart
renders its ``prometheus.providers`` value into the latter)::

    providers:
      - address: https://prometheus.monitoring:9090
        tokenSecret: ramp-system/prometheus-team-a   # NAMESPACE/NAME, key "token"
        caFile: /etc/ramp/prometheus-ca/ca.crt        # TLS: CA bundle (PEM)
        namespaces: [team-a]                          # who may use it (default: everyone)
        namespaceLabel: namespace                     # the label enforced in every selector
        enforceNamespace: true                        # default: on for cluster-wide installs

Rules the code keeps:

* an address a Rollout names is compared after :func:`normalize_address` with the
  configured ones; when it is not configured, or not for the Rollout's namespace, the
  refusal says so without listing what is configured;
* a bearer token is sent only over https (a provider with a token and an http address is
  refused at startup; the legacy global token is simply not sent to http addresses);
* tokens are excluded from ``repr`` and scrubbed from any text by :meth:`redact`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import yaml

ALLOW_ENV = "RAMP_PROMETHEUS_ALLOW"
"""Environment variable with comma-separated allowed Prometheus base URLs."""
PROVIDERS_ENV = "RAMP_PROMETHEUS_PROVIDERS"
"""Environment variable with the providers list (YAML or JSON)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PROVIDER_KEYS = {
    "address",
    "tokenSecret",
    "tokenSecretKey",
    "caFile",
    "certFile",
    "keyFile",
    "namespaces",
    "namespaceLabel",
    "enforceNamespace",
    "maxConnections",
}


def normalize_address(address: str) -> str:
    """Canonical form of a Prometheus base URL, for allow-list comparison.

    Lower-case scheme and host, explicit port, no trailing slash. ValueError for anything
    that is not a plain ``http(s)://host[:port][/path]`` (credentials, query or fragment
    in the URL are refused).

    >>> normalize_address("HTTP://Prometheus.Monitoring:9090/")
    'http://prometheus.monitoring:9090'
    >>> normalize_address("https://prom.example/sub/")
    'https://prom.example:443/sub'
    """
    parts = urlsplit(address.strip())
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError(f"{address!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{address!r} carries credentials; give the token to the operator")
    if parts.query or parts.fragment:
        raise ValueError(f"{address!r} has a query or fragment")
    if not parts.hostname:
        raise ValueError(f"{address!r} has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
    except ValueError as error:
        raise ValueError(f"{address!r} has an invalid port") from error
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.rstrip('/')}"


def _check_token(token: str | None) -> None:
    if token is not None and (
        not token or any(ch.isspace() or not ch.isprintable() for ch in token)
    ):
        # Checked here so that the HTTP client never raises an error quoting it.
        raise ValueError("the Prometheus token is empty or contains whitespace")


@dataclass(frozen=True)
class Endpoint:
    """One Prometheus address and how to reach it, as the cluster admin configured it."""

    address: str
    token: str | None = field(default=None, repr=False)
    token_secret: str | None = None
    """``NAMESPACE/NAME`` of the Secret the token is read from (and read again)."""
    token_secret_key: str = "token"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    namespaces: tuple[str, ...] | None = None
    """Namespaces whose Rollouts may use it; None: every namespace."""
    namespace_label: str = "namespace"
    enforce_namespace: bool | None = None
    """None: the operator's default (on for cluster-wide installs)."""
    max_connections: int = 16
    legacy: bool = False
    """From ``--prometheus-allow``: the global token is sent only over https."""

    def __post_init__(self) -> None:
        normalize_address(self.address)
        _check_token(self.token)
        if self.max_connections < 1:
            raise ValueError(f"{self.address}: maxConnections must be at least 1")

    @property
    def key(self) -> str:
        return normalize_address(self.address)

    @property
    def https(self) -> bool:
        return self.key.startswith("https://")

    def sends_token(self) -> str | None:
        """The token to put on requests: only ever over https."""
        return self.token if self.https else None

    def serves(self, namespace: str | None) -> bool:
        return self.namespaces is None or (namespace is not None and namespace in self.namespaces)


@dataclass(frozen=True)
class ProviderConfig:
    """The operator's Prometheus settings: which servers may be queried, by whom, with what.

    The tokens are excluded from ``repr`` so that logging the config cannot leak them.
    """

    allowed_addresses: tuple[str, ...] = ()
    """Base URLs that metrics of every namespace may name (``--prometheus-allow``)."""
    token: str | None = field(default=None, repr=False)
    """Bearer token for the allowed addresses (``--prometheus-token-secret``), https only."""
    ca_file: str | None = None
    """CA bundle (PEM) to verify https servers; the system store when unset."""
    max_response_bytes: int = 1024 * 1024
    """Larger answers are an Error (counted while they are read)."""
    max_series: int = 1000
    """Answers with more series are an Error (a metric judges a handful of values)."""
    providers: tuple[Endpoint, ...] = ()
    """Addresses configured one by one (tokens, TLS, namespaces); they win over the
    allow-list for the same address."""
    enforce_namespace: bool = False
    """Scope every query to the Rollout's namespace unless a provider says otherwise."""

    def __post_init__(self) -> None:
        for address in self.allowed_addresses:
            normalize_address(address)  # fail at startup on a malformed flag
        _check_token(self.token)
        for provider in self.providers:
            if provider.token_secret and not provider.https:
                raise ValueError(
                    f"Prometheus provider {provider.address}: a token is only sent over "
                    "https; use an https:// address or drop tokenSecret"
                )

    @classmethod
    def from_env_and_args(
        cls,
        allow: Iterable[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> ProviderConfig:
        """Build the config from ``--prometheus-allow`` values and ``RAMP_PROMETHEUS_ALLOW``.

        Both sources add up (flags first, then the environment's comma-separated list);
        empty entries are ignored and duplicates removed. ``environ`` defaults to
        ``os.environ``. ValueError names a malformed address.
        """
        env = os.environ if environ is None else environ
        entries = [*allow, *env.get(ALLOW_ENV, "").split(",")]
        seen: dict[str, str] = {}
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                key = normalize_address(entry)
            except ValueError as error:
                raise ValueError(f"invalid Prometheus allow-list entry: {error}") from None
            seen.setdefault(key, entry)
        token = token.strip() if token else None
        return cls(allowed_addresses=tuple(seen.values()), token=token or None, ca_file=ca_file)

    def with_token(self, token: str | None) -> ProviderConfig:
        """The same config with another global token (e.g. after the Secret changed)."""
        return replace(self, token=(token or "").strip() or None)

    def with_provider_token(self, address: str, token: str | None) -> ProviderConfig:
        """The same config with another token for one provider."""
        key = normalize_address(address)
        providers = tuple(
            replace(p, token=(token or "").strip() or None) if p.key == key else p
            for p in self.providers
        )
        return replace(self, providers=providers)

    def endpoints(self) -> list[Endpoint]:
        """Every configured address (providers first, then the allow-list)."""
        out = {p.key: p for p in self.providers}
        for address in self.allowed_addresses:
            key = normalize_address(address)
            if key not in out:
                out[key] = Endpoint(address, token=self.token, ca_file=self.ca_file, legacy=True)
        return list(out.values())

    def endpoint(self, address: str, namespace: str | None = None) -> Endpoint | str:
        """The endpoint ``address`` means for a Rollout of ``namespace``, or why not.

        The refusal does not say which addresses exist or for whom: a tenant learns only
        that this one is not available to it.
        """
        try:
            wanted = normalize_address(address)
        except ValueError as error:
            return f"Prometheus address refused: {error}"
        for endpoint in self.endpoints():
            if endpoint.key == wanted and endpoint.serves(namespace):
                return endpoint
        whom = f" to namespace {namespace}" if namespace else ""
        return (
            f"Prometheus address {address} is not available{whom}: the cluster admin "
            "configures which Prometheus servers each namespace may query (operator flag "
            "--prometheus-allow or the providers list); no request was sent"
        )

    def refusal(self, address: str, namespace: str | None = None) -> str | None:
        """Why ``address`` may not be queried by ``namespace``, or None when it may."""
        found = self.endpoint(address, namespace)
        return found if isinstance(found, str) else None

    def enforces(self, endpoint: Endpoint) -> bool:
        if endpoint.enforce_namespace is not None:
            return endpoint.enforce_namespace
        return self.enforce_namespace

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of any token replaced."""
        for token in {self.token, *(p.token for p in self.providers)}:
            if token:
                text = text.replace(token, "<redacted>")
        return text


def parse_providers(text: str, where: str = PROVIDERS_ENV) -> tuple[Endpoint, ...]:
    """The providers of a YAML or JSON document (a list, or ``{providers: [...]}``).

    ValueError names the entry and the field; tokens are read later, from their Secrets.
    """
    try:
        doc: Any = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError:
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError(f"{where}: neither YAML nor JSON") from None
    if isinstance(doc, dict):
        doc = doc.get("providers", [])
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise ValueError(f"{where}: expected a list of providers")
    out: list[Endpoint] = []
    for i, entry in enumerate(doc):
        at = f"{where}: providers[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: expected an object")
        unknown = sorted(set(entry) - _PROVIDER_KEYS)
        if unknown:
            raise ValueError(f"{at}: unknown field {unknown[0]!r}")
        if not isinstance(entry.get("address"), str):
            raise ValueError(f"{at}.address: required, a URL")
        namespaces = entry.get("namespaces")
        if namespaces is not None and (
            not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces)
        ):
            raise ValueError(f"{at}.namespaces: expected a list of namespace names")
        secret = entry.get("tokenSecret")
        if secret is not None:
            try:
                parse_secret_ref(str(secret))
            except ValueError as error:
                raise ValueError(f"{at}.tokenSecret: {error}") from None
        enforce = entry.get("enforceNamespace")
        if enforce is not None and not isinstance(enforce, bool):
            raise ValueError(f"{at}.enforceNamespace: expected true or false")
        try:
            out.append(
                Endpoint(
                    address=entry["address"],
                    token_secret=secret,
                    token_secret_key=str(entry.get("tokenSecretKey") or "token"),
                    ca_file=entry.get("caFile"),
                    cert_file=entry.get("certFile"),
                    key_file=entry.get("keyFile"),
                    namespaces=None if namespaces is None else tuple(namespaces),
                    namespace_label=str(entry.get("namespaceLabel") or "namespace"),
                    enforce_namespace=enforce,
                    max_connections=int(entry.get("maxConnections") or 16),
                )
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"{at}: {error}") from None
    return tuple(out)


def parse_secret_ref(ref: str) -> tuple[str, str]:
    """Split ``--prometheus-token-secret NAMESPACE/NAME``; ValueError when malformed."""
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"expected NAMESPACE/NAME, got {ref!r}")
    return namespace, name


def token_from_secret_data(data: Mapping[str, str] | None, key: str = "token") -> str:
    """The bearer token from a Secret's base64 ``data`` (surrounding whitespace removed).

    The error messages name the key, never a value.
    """
    if not data or key not in data:
        raise ValueError(f"the Secret has no {key!r} key")
    try:
        token = base64.b64decode(data[key], validate=True).decode("utf-8").strip()
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"the Secret's {key!r} key is not base64-encoded UTF-8") from None
    if not token:
        raise ValueError(f"the Secret's {key!r} key is empty")
    return token
