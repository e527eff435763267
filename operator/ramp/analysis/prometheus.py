"""Prometheus client: instant queries over the HTTP API, for the metric providers.

The ``prometheus`` and ``compare`` kinds (:mod:`ramp.analysis.kinds`) judge what this
client answers. Everything that can go wrong between the operator and Prometheus is a
:class:`ProviderError` saying what (address refused, unreachable, timeout, HTTP status,
malformed answer): an **Error** verdict, so an outage is never mistaken for a bad canary.
An answer without usable data (empty vector, NaN, too few requests) is **Inconclusive**,
never a pass. Only an answer with data reaches the CEL conditions (see
:mod:`ramp.analysis.cel`).

Security:

* only addresses the cluster admin configured for the Rollout's namespace
  (:mod:`ramp.analysis.providers`) are queried; any other is refused before a connection
  is made, and redirects are not followed;
* every selector of the query is scoped to the Rollout's namespace where the address
  enforces it (:mod:`ramp.analysis.tenancy`);
* a bearer token goes only into the ``Authorization`` header of https requests to its
  address; it is never logged, never put into a message, and any text that comes back
  from the network is scrubbed of it before it is used in a message;
* Prometheus' error bodies are never copied into a message (:func:`classify_status`);
  answers are capped in bytes while they are read and in series when parsed;
* substituted query values are escaped (:mod:`ramp.analysis.promql`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import aiohttp

from ramp.analysis.cel import Result, format_result
from ramp.analysis.promql import QueryContext, QueryTemplateError, render
from ramp.analysis.providers import (  # re-exported: the stable names of this module
    ALLOW_ENV,
    Endpoint,
    ProviderConfig,
    normalize_address,
    parse_secret_ref,
    token_from_secret_data,
)
from ramp.analysis.tenancy import TenancyError, enforce_namespace

log = logging.getLogger("ramp.analysis.prometheus")

__all__ = [
    "ALLOW_ENV",
    "Endpoint",
    "ErrorKind",
    "PrometheusClient",
    "ProviderConfig",
    "ProviderError",
    "QueryResult",
    "normalize_address",
    "parse_response",
    "parse_secret_ref",
    "token_from_secret_data",
]

OFF_LOOP_BYTES = 64 * 1024
"""Answers larger than this are decoded and parsed on a thread, not on the event loop."""


def endpoint_session(
    sessions: dict[str, aiohttp.ClientSession], endpoint: Endpoint, default_ca: str | None
) -> aiohttp.ClientSession:
    """The HTTP session of ``endpoint`` in ``sessions`` (made on first use, or again once
    closed): its CA (else ``default_ca``) and client certificate, its connection limit,
    and no proxy from the environment (the allow-list is the truth). Prometheus queries
    and the web and webhook checks share it."""
    session = sessions.get(endpoint.key)
    if session is None or session.closed:
        ssl_context: ssl.SSLContext | bool = True
        ca_file = endpoint.ca_file or default_ca
        if ca_file or endpoint.cert_file:
            ssl_context = ssl.create_default_context(cafile=ca_file)
            if endpoint.cert_file:
                ssl_context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        connector = aiohttp.TCPConnector(ssl=ssl_context, limit=endpoint.max_connections)
        session = aiohttp.ClientSession(connector=connector, trust_env=False)
        sessions[endpoint.key] = session
    return session


class ErrorKind(StrEnum):
    """Why a query gave no usable answer (all of them give an Error verdict)."""

    REFUSED = "Refused"
    """The address is not available to the Rollout's namespace (no request was sent)."""
    UNREACHABLE = "Unreachable"
    """No connection: DNS, refused, reset, TLS failure."""
    TIMEOUT = "Timeout"
    """No complete answer within the metric's timeout."""
    HTTP_STATUS = "HttpStatus"
    """Prometheus answered with a non-200 status (bad query, auth, overload)."""
    MALFORMED = "Malformed"
    """The answer is not a Prometheus API response we can read."""
    UNSUPPORTED = "Unsupported"
    """A valid answer of a shape a metric cannot use (range vector, string)."""
    TOO_LARGE = "TooLarge"
    """More bytes or series than the operator's limits (read no further)."""
    OUT_OF_NAMESPACE = "OutOfNamespace"
    """The query cannot be scoped to the Rollout's namespace (no request was sent)."""


class ProviderError(Exception):
    """A query that produced no usable answer; ``str()`` is safe to show (no secrets)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Sample:
    """One value of an instant query's answer."""

    labels: Mapping[str, str]
    value: float
    text: str
    """The value exactly as Prometheus wrote it (``"0.0123"``, ``"NaN"``)."""


@dataclass(frozen=True)
class QueryResult:
    """The answer to an instant query: a scalar (one unlabelled sample) or a vector."""

    result_type: str
    samples: tuple[Sample, ...]

    @property
    def result(self) -> Result:
        """``result`` for CEL: a double for one sample, else a list of doubles."""
        if len(self.samples) == 1:
            return self.samples[0].value
        return [s.value for s in self.samples]

    @property
    def text(self) -> str | None:
        """The value for the status record; None when there is no data."""
        if not self.samples:
            return None
        if len(self.samples) == 1:
            return self.samples[0].text
        return format_result(self.result)


def _parse_value(pair: Any) -> tuple[float, str]:
    # The messages never quote the answer: it is Prometheus' data, not the tenant's.
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise ValueError('a sample is not [time, "value"]')
    text = pair[1]
    try:
        return float(text), text[:40]
    except ValueError:
        raise ValueError("a sample value is not a number") from None


def parse_response(body: Any, max_series: int | None = None) -> QueryResult:
    """Read a decoded ``/api/v1/query`` success body; ProviderError when unusable
    (also when a vector has more than ``max_series`` series)."""
    try:
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ValueError("status is not 'success'")
        data = body["data"]
        result_type = data["resultType"]
        result = data["result"]
        if result_type == "scalar":
            value, text = _parse_value(result)
            return QueryResult("scalar", (Sample({}, value, text),))
        if result_type == "vector":
            if not isinstance(result, list):
                raise ValueError("vector result is not a list")
            if max_series is not None and len(result) > max_series:
                raise ProviderError(
                    ErrorKind.TOO_LARGE,
                    f"the query returned {len(result)} series, more than the operator's "
                    f"limit of {max_series} (aggregate with sum(...) or narrow the selector)",
                )
            samples = []
            for item in result:
                value, text = _parse_value(item["value"])
                labels = item.get("metric", {})
                if not isinstance(labels, dict):
                    raise ValueError("sample labels are not an object")
                samples.append(Sample({str(k): str(v) for k, v in labels.items()}, value, text))
            return QueryResult("vector", tuple(samples))
    except (KeyError, TypeError, ValueError) as error:
        raise ProviderError(
            ErrorKind.MALFORMED, f"malformed answer from Prometheus: {error}"
        ) from None
    if result_type == "matrix":
        raise ProviderError(
            ErrorKind.UNSUPPORTED,
            "the query returned a range vector (matrix); a metric needs an instant vector or "
            "a scalar (wrap the range selector in rate(), avg_over_time(), ...)",
        )
    raise ProviderError(
        ErrorKind.UNSUPPORTED, f"the query returned a {str(result_type)[:20]!r}, not a number"
    )


_ERROR_TYPES = frozenset(
    {"bad_data", "timeout", "canceled", "execution", "internal", "unavailable", "not_found"}
)
_STATUS_REASONS = {
    400: "Prometheus refused the query as invalid (check its syntax with promtool or the "
    "Prometheus UI)",
    401: "Prometheus refused the operator's credentials (ask the cluster admin)",
    403: "Prometheus refused the operator's credentials (ask the cluster admin)",
    404: "no Prometheus query API at this address",
    422: "Prometheus could not evaluate the query (for example many-to-many matching, "
    "duplicate series, or too many samples)",
    429: "Prometheus is overloaded (too many requests)",
    503: "Prometheus is unavailable or overloaded",
}


def classify_status(address: str, status: int, decoded: Any) -> str:
    """A message for a non-200 answer that copies nothing from Prometheus' body.

    Prometheus' error text can quote series of any namespace (a "duplicate series" error
    prints whole label sets), so only the status and the ``errorType`` (one of a fixed
    set of words) are kept; the operator's debug log has the body.
    """
    if 300 <= status < 400:
        reason = "redirects are not followed (configure the final address instead)"
    else:
        reason = _STATUS_REASONS.get(status) or (
            "Prometheus failed to answer" if status >= 500 else "Prometheus refused the query"
        )
    error_type = decoded.get("errorType") if isinstance(decoded, dict) else None
    kind = f", {error_type}" if isinstance(error_type, str) and error_type in _ERROR_TYPES else ""
    return f"Prometheus at {address} answered HTTP {status}{kind}: {reason}"


class PrometheusClient:
    """Runs instant queries for the metric providers that read Prometheus (the
    ``prometheus`` and ``compare`` kinds share one per operator). Use as an async context
    manager (or call :meth:`close`) so the HTTP sessions are closed.

    Each configured address has its own connection pool (a hung server holds only its
    own connections).
    """

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP sessions (new ones are opened on the next query)."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    def set_config(self, config: ProviderConfig) -> None:
        """Use another config from now on (e.g. a rotated token)."""
        self.config = config

    def _get_session(self, endpoint: Endpoint) -> aiohttp.ClientSession:
        return endpoint_session(self._sessions, endpoint, self.config.ca_file)

    async def query(
        self, address: str, query: str, timeout: float, namespace: str | None = None
    ) -> QueryResult:
        """Run an instant query for a Rollout of ``namespace``; ProviderError (safe
        message) when there is no usable answer."""
        endpoint = self.config.endpoint(address, namespace)
        if isinstance(endpoint, str):
            raise ProviderError(ErrorKind.REFUSED, endpoint)
        url = address.rstrip("/") + "/api/v1/query"
        headers = {"Accept": "application/json"}
        token = endpoint.sends_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = {"query": query, "timeout": f"{timeout:g}s"}
        redact = self.config.redact
        log.debug("querying %s: %s", address, query)
        try:
            async with asyncio.timeout(timeout):
                async with self._get_session(endpoint).get(
                    url, params=params, headers=headers, allow_redirects=False
                ) as response:
                    body = await self._read(response)
                    status = response.status
        except TimeoutError:
            raise ProviderError(
                ErrorKind.TIMEOUT,
                f"Prometheus at {address} did not answer within {timeout:g}s (timeout)",
            ) from None
        except ProviderError:
            raise
        except (aiohttp.ClientError, OSError, ssl.SSLError) as error:
            detail = redact(str(error) or type(error).__name__)[:200]
            raise ProviderError(
                ErrorKind.UNREACHABLE, f"Prometheus unreachable at {address}: {detail}"
            ) from None
        if len(body) > OFF_LOOP_BYTES:  # a big answer is decoded off the event loop
            return await asyncio.to_thread(self._decode, address, status, body)
        return self._decode(address, status, body)

    def _decode(self, address: str, status: int, body: bytes) -> QueryResult:
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if status != 200:
            if log.isEnabledFor(logging.DEBUG):  # the admin's log may see the body
                log.debug("%s answered %s: %s", address, status, self.config.redact(
                    body[:300].decode("utf-8", "replace")))  # fmt: skip
            raise ProviderError(ErrorKind.HTTP_STATUS, classify_status(address, status, decoded))
        if decoded is None:
            raise ProviderError(
                ErrorKind.MALFORMED, f"malformed answer from Prometheus at {address}: not JSON"
            )
        return parse_response(decoded, self.config.max_series)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.config.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise ProviderError(
                    ErrorKind.TOO_LARGE,
                    f"Prometheus answer larger than the operator's limit of {limit} bytes "
                    "(does the query return too many series?)",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def scope(self, address: str, query: str, namespace: str, where: str) -> str:
        """:func:`scope_query` with this client's config."""
        return scope_query(self.config, address, query, namespace, where)


def scope_query(
    config: ProviderConfig, address: str, query: str, namespace: str, where: str
) -> str:
    """``query`` as it is sent for a Rollout of ``namespace``: refused (ProviderError)
    when the address is not available to it, scoped to the namespace when the address
    enforces it (:mod:`ramp.analysis.tenancy`). ``where`` names the field."""
    endpoint = config.endpoint(address, namespace)
    if isinstance(endpoint, str):
        raise ProviderError(ErrorKind.REFUSED, endpoint)
    if not config.enforces(endpoint):
        return query
    try:
        return enforce_namespace(query, namespace, endpoint.namespace_label)
    except TenancyError as error:
        raise ProviderError(ErrorKind.OUT_OF_NAMESPACE, f"{where}: {error}") from None


def check_queries(
    config: ProviderConfig,
    address: str,
    queries: Sequence[tuple[str, QueryContext, str]],
    namespace: str,
) -> list[str]:
    """Why these ``(template, context, field)`` queries of one address cannot be sent for
    a Rollout of ``namespace`` (empty when they can): the first that does not render or
    cannot be scoped, then the address' refusal."""
    problems: list[str] = []
    refusal = config.refusal(address, namespace)
    for query, bound, where in queries:
        try:
            rendered = render(query, bound)
            if refusal is None:  # scoped to the namespace where the address enforces it
                scope_query(config, address, rendered, namespace, where)
        except QueryTemplateError as error:
            problems.append(f"query: {error}")
            break
        except ProviderError as error:
            problems.append(error.message)
            break
    if refusal is not None:
        problems.append(refusal)
    return problems


def single(answer: QueryResult, what: str) -> float | None:
    """The one value of a compare query; None for no data; ProviderError for several."""
    if not answer.samples:
        return None
    if len(answer.samples) > 1:
        raise ProviderError(
            ErrorKind.UNSUPPORTED,
            f"the {what} query returned {len(answer.samples)} series; compare queries must "
            "return one value (aggregate with sum(...))",
        )
    return answer.samples[0].value


def show(value: float | None) -> str:
    """A value for a message (``none`` for no data)."""
    return "none" if value is None else format_result(value)
