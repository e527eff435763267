"""HTTP for the web and webhook checks: the allow-list, TLS, bounded answers, safe errors.

The same rules as Prometheus (:mod:`ramp.analysis.prometheus`), for URLs a tenant writes:

* a check URL must lie under an address the cluster admin allowed for the Rollout's
  namespace (:func:`check_endpoint`: same scheme, host and port, and the configured path
  as a prefix); anything else is refused before a connection is made;
* certificates are verified (the system store, or the provider's ``caFile``); redirects
  are not followed; no proxy from the environment;
* answers are capped in bytes while they are read; transport errors become a
  :class:`CheckError` whose message quotes nothing of the answer.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp

from ramp.analysis.prometheus import endpoint_session
from ramp.analysis.promql import QueryContext, QueryTemplateError
from ramp.analysis.providers import Endpoint, ProviderConfig, normalize_address

MAX_ANSWER_BYTES = 256 * 1024
"""A check's answer larger than this is an Error (a verdict is a few hundred bytes)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class CheckError(Exception):
    """No usable answer; ``message`` is safe to show (it never quotes the answer)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def render_url(template: str, context: QueryContext) -> str:
    """``template`` with its placeholders substituted, each value percent-encoded (a
    value can never change the host, the path's structure or add a parameter).

    >>> render_url("http://h/v/{{rollout}}?rev={{canaryRevision}}",
    ...            QueryContext("shop", "ns", canary_revision="a b/c"))
    'http://h/v/shop?rev=a%20b%2Fc'
    """
    return _PLACEHOLDER.sub(lambda m: quote(context.lookup(m.group(1)), safe=""), template)


def render_text(template: str, context: QueryContext) -> str:
    """``template`` with its placeholders substituted as they are (a JSON field or a
    request body: the serialiser escapes)."""
    return _PLACEHOLDER.sub(lambda m: context.lookup(m.group(1)), template)


def check_endpoint(config: ProviderConfig, url: str, namespace: str | None) -> Endpoint | str:
    """The configured endpoint ``url`` lies under for a Rollout of ``namespace``, or why
    not (the refusal lists nothing of what is configured).

    >>> config = ProviderConfig(allowed_addresses=("http://checks.test:8080/api",))
    >>> check_endpoint(config, "http://checks.test:8080/api/health?x=1", "a").address
    'http://checks.test:8080/api'
    >>> check_endpoint(config, "http://checks.test:8080/apix", "a")[:40]
    'address http://checks.test:8080/apix is '
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return f"address {url} carries credentials; put them in a header from a Secret"
    try:
        wanted = normalize_address(f"{parts.scheme}://{parts.netloc}{parts.path}")
    except ValueError as error:
        return f"address refused: {error}"
    for endpoint in config.endpoints():
        base = endpoint.key
        if (wanted == base or wanted.startswith(base + "/")) and endpoint.serves(namespace):
            return endpoint
    whom = f" to namespace {namespace}" if namespace else ""
    return (
        f"address {url} is not available{whom}: the cluster admin configures which "
        "addresses each namespace may call (operator flag --prometheus-allow or the "
        "providers list); no request was sent"
    )


class CheckHttp:
    """One connection pool per configured endpoint; close with :meth:`close`."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    def _session(self, endpoint: Endpoint) -> aiohttp.ClientSession:
        return endpoint_session(self._sessions, endpoint, self.config.ca_file)

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,
    ) -> Answer:
        """Send one request; CheckError on a timeout, a transport error or a too large
        answer. Any HTTP status is an :class:`Answer` (the caller judges it)."""
        try:
            async with asyncio.timeout(timeout):
                async with self._session(endpoint).request(
                    method, url, headers=dict(headers), data=body, allow_redirects=False
                ) as response:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.content.iter_chunked(65536):
                        size += len(chunk)
                        if size > MAX_ANSWER_BYTES:
                            raise CheckError(
                                f"the answer of {_where(url)} is larger than "
                                f"{MAX_ANSWER_BYTES} bytes"
                            )
                        chunks.append(chunk)
                    return Answer(response.status, b"".join(chunks))
        except TimeoutError:
            raise CheckError(
                f"{_where(url)} did not answer within {timeout:g}s (timeout)"
            ) from None
        except CheckError:
            raise
        except (aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as error:
            detail = (str(error) or type(error).__name__).splitlines()[0][:200]
            raise CheckError(f"{_where(url)} unreachable: {detail}") from None


def _where(url: str) -> str:
    """The URL without its query (a query may carry a tenant's data)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def template_problem(template: str, context: QueryContext) -> str | None:
    """Why ``template``'s placeholders cannot be substituted, or None."""
    try:
        render_text(template, context)
    except QueryTemplateError as error:
        return str(error)
    return None
