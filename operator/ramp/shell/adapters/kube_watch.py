"""A list+watch of our own: one asyncio HTTP client, no framework per event.

The child Deployments are most of the events the operator receives (the Deployment
controller writes each child's status several times per step). The framework's path for
an event (a worker task per object, its handler machinery, a thread per synchronous
handler) cost more CPU than the reconciles those events wake; here an event is one JSON
line decoded and handed to a callback on the event loop.

:class:`AsyncKube` is one ``aiohttp`` session built from the same client configuration
as the blocking client (server, CA, client certificate, bearer token and its refresh).
:func:`list_watch` lists a collection, then watches it from the list's resourceVersion,
resuming from the last one seen (bookmarks keep it fresh) when a stream ends; a "410
Gone" (the server no longer has that version) lists again, and the callback is given the
whole list so that what was deleted meanwhile is noticed. An API error (the server
restarting, a namespace just deleted) waits and tries again; it never gives up. A watch of
something the cluster may lack (a CRD not installed, no permission to list it) is given an
``absent`` delay: a 403 or 404 is then said once and looked at again only that much later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

log = logging.getLogger("ramp.watch")

SERVER_TIMEOUT = 300
"""Seconds after which the API server ends a watch (it is resumed at once)."""
READ_TIMEOUT = 330.0
"""Seconds without a byte (bookmarks come about every minute) before a watch is given up."""
LIST_TIMEOUT = 60.0
PAGE = 500
BACKOFF = (0.5, 1.0, 2.0, 5.0)
"""Seconds between the attempts after an API error (the last one repeats)."""

OnList = Callable[[list[dict[str, Any]]], None]
"""Called with every object of a (re-)list."""
OnEvent = Callable[[str, dict[str, Any]], None]
"""Called with a watch event's type (ADDED, MODIFIED, DELETED) and object."""


class Gone(Exception):
    """The resourceVersion a watch resumes from is too old: list again."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class AsyncKube:
    """One asyncio HTTP session to the API server, configured like ``configuration``
    (a ``kubernetes.client.Configuration``)."""

    def __init__(self, configuration: Any) -> None:
        self.configuration = configuration
        self.host = str(configuration.host).rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self.configuration
        if not self.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def headers(self) -> dict[str, str]:
        """The bearer token, asked of the configuration each time (it refreshes it)."""
        auth = self.configuration.auth_settings().get("BearerToken")
        headers = {"Accept": "application/json"}
        if auth and auth.get("value"):
            headers["Authorization"] = str(auth["value"])
        return headers

    def url(self, path: str, params: Mapping[str, Any]) -> str:
        return f"{self.host}{path}?{urlencode(params)}"

    async def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=LIST_TIMEOUT, sock_connect=10)
        async with self.session().get(
            self.url(path, params), headers=self.headers(), timeout=timeout
        ) as response:
            if response.status == 410:
                raise Gone()
            if response.status >= 400:
                raise ApiError(response.status, (await response.text())[:200])
            data: dict[str, Any] = await response.json(loads=json.loads)
            return data

    async def stream(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch, one decoded JSON object per line (lines of any length:
        a Deployment may be larger than the stream reader's line limit)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=READ_TIMEOUT)
        async with self.session().get(
            self.url(path, params), headers=self.headers(), timeout=timeout
        ) as response:
            if response.status == 410:
                raise Gone()
            if response.status >= 400:
                raise ApiError(response.status, (await response.text())[:200])
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                lines = buffer.split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if line.strip():
                        yield json.loads(line)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def list_all(
    kube: AsyncKube, path: str, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """Every object of a collection (paged) and the list's resourceVersion."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = {**params, "limit": PAGE, **({"continue": token} if token else {})}
        data = await kube.get(path, page)
        items.extend(data.get("items") or [])
        meta = data.get("metadata") or {}
        token = str(meta.get("continue") or "")
        if not token:
            return items, str(meta.get("resourceVersion") or "")


async def list_watch(
    kube: AsyncKube,
    path: str,
    params: Mapping[str, Any],
    on_list: OnList,
    on_event: OnEvent,
    *,
    backoff: tuple[float, ...] = BACKOFF,
    absent: float | None = None,
    on_absent: Callable[[], None] | None = None,
) -> None:
    """List, then watch, forever (until cancelled): see the module's docstring.
    ``absent``: seconds to wait after a 403 or 404 (the resource is not served, or not to
    us), said once at INFO, ``on_absent`` called; None: an API error like any other."""
    version = ""
    failures = 0
    said = False
    while True:
        try:
            if not version:
                items, version = await list_all(kube, path, params)
                on_list(items)
            watch = {
                **params,
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": version,
                "timeoutSeconds": SERVER_TIMEOUT,
            }
            seen = 0
            async for event in kube.stream(path, watch):
                seen += 1
                kind = str(event.get("type") or "")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiError(int(obj.get("code") or 0), str(obj.get("message") or ""))
                if kind != "BOOKMARK":
                    on_event(kind, obj)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                failures = 0
            if not seen:  # ended at once (a server going away): not a busy loop
                await asyncio.sleep(backoff[0])
        except asyncio.CancelledError:
            raise
        except Gone:
            log.debug("watch of %s: resourceVersion %s gone, listing again", path, version)
            version = ""
        except ApiError as exc:
            if absent is None or exc.status not in (403, 404):
                await _failed(path, exc, failures, backoff)
                failures += 1
                continue
            log.log(
                logging.DEBUG if said else logging.INFO,
                "%s is not served to Ramp (%s): not watched; looked at again every %.0fs",
                path,
                exc.status,
                absent,
            )
            said = True
            version = ""
            if on_absent is not None:
                on_absent()
            await asyncio.sleep(absent)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            await _failed(path, exc, failures, backoff)
            failures += 1
        except Exception:  # a defect of ours in a callback: said loudly, then again
            log.exception("watch of %s: an event was not handled", path)
            version = ""  # what the callback missed is seen by the next list
            await asyncio.sleep(backoff[min(failures, len(backoff) - 1)])
            failures += 1


async def _failed(path: str, exc: Exception, failures: int, backoff: tuple[float, ...]) -> None:
    """The server restarting, a timeout, a refusal, a cut line: wait, then try again."""
    level = logging.WARNING if failures == len(backoff) else logging.DEBUG
    log.log(level, "watch of %s failed (%s): trying again", path, exc)
    await asyncio.sleep(backoff[min(failures, len(backoff) - 1)])
