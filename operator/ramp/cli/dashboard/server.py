"""``kubectl ramp dashboard``: a local web UI served on 127.0.0.1 with the user's credentials.

Nothing runs in the cluster: the server talks to the API server with the kubeconfig of the
person who started it, so the dashboard can read and do exactly what their RBAC allows.
Writes are the CLI's own (:mod:`ramp.cli.dashboard.actions`): once-only token annotations for
promote / promote-full / abort / retry, ``spec.paused`` for pause / resume, and ``undo``
for rollback; a refusal of the API server is shown as it was given.

Only the person who started it can use it: the server binds loopback only, answers only to
the ``Host`` names of loopback (no DNS rebinding), asks for the random token of the URL it
printed (kept in a ``SameSite=Strict`` cookie) and takes writes only with the page's CSRF
token and a same-origin ``Origin``.

Live updates: one watch of the Rollouts (list, then watch; relist on 410 Gone) feeds the
list page by server-sent events (aiohttp-sse, which also pings idle streams); a detail page
opens a :class:`RolloutWatch` of its Rollout, Deployments and Events for as long as it is open.
The pages are Jinja templates (:mod:`ramp.cli.dashboard.pages`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.api.labels import ROLLOUT_LABEL
from ramp.cli.client import CliError, Kube, NotFound, Obj, RolloutWatch, api_error
from ramp.cli.dashboard import pages, views
from ramp.cli.dashboard.actions import run_verb
from ramp.cli.dashboard.watches import RolloutsWatch
from ramp.core.names import rollout_label

STATIC = Path(__file__).parent / "static"
COOKIE = "ramp_dashboard"
SPLIT_SAMPLES = 2000
"""Points of the replica split kept per Rollout (one per observed change)."""
HEARTBEAT_SECONDS = 15.0
"""An idle stream is pinged this often (a closed one is noticed at the latest then)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Dashboard:
    """The aiohttp application and the watches behind it."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        all_namespaces: bool,
        token: str | None = None,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.all_namespaces = all_namespaces
        self.token = token or secrets.token_urlsafe(24)
        self.csrf = secrets.token_urlsafe(24)
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.version = 0
        self.changed = asyncio.Event()
        self.split: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self.measurements: dict[tuple[str, str], dict[str, Obj]] = {}
        self.lock = threading.Lock()
        self.kube = Kube(api_client, namespace)
        self.rollouts = RolloutsWatch(self.kube, all_namespaces, self._changed_threadsafe)
        self.app = web.Application(middlewares=[self._guard])
        self.app.add_routes(
            [
                web.get("/", self.list_page),
                web.get("/rollouts/{ns}/{name}", self.detail_page),
                web.get("/api/rollouts", self.list_json),
                web.get("/api/stream", self.list_stream),
                web.get("/api/rollouts/{ns}/{name}", self.detail_json),
                web.get("/api/rollouts/{ns}/{name}/stream", self.detail_stream),
                web.post("/api/rollouts/{ns}/{name}/{verb}", self.verb),
                web.static("/static", STATIC, append_version=False),
            ]
        )
        self.app.on_shutdown.append(self._on_shutdown)
        self._streams: set[EventSourceResponse] = set()

    # -- state ---------------------------------------------------------------------------

    def _changed_threadsafe(self) -> None:
        for obj in self.rollouts.snapshot():
            self.record(obj)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()

    def record(self, obj: Obj) -> None:
        """Remember the split and the measurements of a Rollout as seen now."""
        key = RolloutsWatch._key(obj)
        sample = views.split_sample(obj, time.time())
        measured = (obj.get("status") or {}).get("measurements") or []
        with self.lock:
            if sample is not None:
                points = self.split.setdefault(key, deque(maxlen=SPLIT_SAMPLES))
                last = points[-1] if points else None
                if last is None or any(last[k] != sample[k] for k in sample if k != "t"):
                    points.append(sample)
            views.merge_measurements(self.measurements.setdefault(key, {}), measured)

    def scope(self) -> str:
        return "all namespaces" if self.all_namespaces else f"namespace {self.namespace}"

    def rows(self, namespace: str | None) -> list[dict[str, Any]]:
        rows = views.summaries(self.rollouts.snapshot())
        return [r for r in rows if not namespace or r["namespace"] == namespace]

    def namespaces(self) -> list[str]:
        if not self.all_namespaces:
            return [self.namespace]
        return sorted({r["namespace"] for r in views.summaries(self.rollouts.snapshot())})

    def build_detail(self, ns: str, name: str, watcher: RolloutWatch | None) -> dict[str, Any]:
        """The detail view (blocking: runs in a thread)."""
        kube = Kube(self.api_client, ns)
        if watcher is not None:
            rollout, deployments, events = watcher.snapshot()
            if rollout is None:
                raise NotFound(f"rollout {name!r} not found in namespace {ns!r}")
        else:
            rollout = kube.get(name)
            deployments = _optional(lambda: kube.deployments(name))
            uid = rollout["metadata"].get("uid")
            events = _optional(lambda: kube.events(name, uid))
        self.record(rollout)
        templates = _optional(
            lambda: (
                kube.custom.list_namespaced_custom_object(
                    GROUP, VERSION, ns, "analysistemplates"
                ).get("items")
                or []
            )
        )
        history = _optional(
            lambda: [
                kube._dict(r)
                for r in kube.apps.list_namespaced_controller_revision(
                    ns, label_selector=f"{ROLLOUT_LABEL}={rollout_label(name)}"
                ).items
            ]
        )
        key = (ns, name)
        with self.lock:
            measured = list(self.measurements.get(key, {}).values())
            split = list(self.split.get(key, ()))
        return views.detail(rollout, deployments, events, history, templates, measured, split)

    # -- security ------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        if request.host not in allowed:
            return web.Response(status=403, text="unexpected Host header")
        response = await self._authorized(request, handler)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    async def _authorized(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/static/"):
            return await handler(request)
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given, self.token):
            query = {k: v for k, v in request.query.items() if k != "token"}
            target = request.rel_url.with_query(query)
            response = web.Response(status=302, headers={"Location": str(target)})
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
            return response
        cookie = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(cookie, self.token):
            return web.Response(
                status=401,
                text="Open the URL that `kubectl ramp dashboard` printed (it carries a token).",
            )
        if request.method != "GET":
            origin = request.headers.get("Origin")
            csrf = request.headers.get("X-Ramp-CSRF", "")
            if (origin and origin != f"http://{request.host}") or not hmac.compare_digest(
                csrf, self.csrf
            ):
                return web.json_response({"ok": False, "error": "bad CSRF token"}, status=403)
        return await handler(request)

    # -- pages ---------------------------------------------------------------------------

    async def _synced(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.rollouts.synced.wait, 10)

    async def list_page(self, request: web.Request) -> web.Response:
        await self._synced()
        namespace = request.query.get("namespace") or None
        text = pages.list_page(
            self.rows(namespace),
            namespace,
            self.namespaces(),
            self.scope(),
            self.csrf,
            error=self.rollouts.error,
        )
        return web.Response(text=text, content_type="text/html")

    async def detail_page(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        loop = asyncio.get_running_loop()
        try:
            view = await loop.run_in_executor(None, self.build_detail, ns, name, None)
        except (CliError, ApiException) as exc:
            message = api_error(exc) if isinstance(exc, ApiException) else str(exc)
            status = exc.status if isinstance(exc, ApiException) else 404
            return web.Response(
                text=pages.error_page(ns, name, message, self.scope(), self.csrf),
                status=status or 500,
                content_type="text/html",
            )
        text = pages.detail_page(ns, name, view, self.scope(), self.csrf)
        return web.Response(text=text, content_type="text/html")

    # -- data ----------------------------------------------------------------------------

    def _list_payload(self, namespace: str | None) -> dict[str, Any]:
        return {"rollouts": self.rows(namespace), "error": self.rollouts.error}

    async def list_json(self, request: web.Request) -> web.Response:
        await self._synced()
        return web.json_response(self._list_payload(request.query.get("namespace") or None))

    @contextlib.asynccontextmanager
    async def _sse(self, request: web.Request) -> AsyncIterator[EventSourceResponse]:
        """A server-sent event stream, pinged when idle; ends quietly when the browser
        goes away or the server shuts down."""
        response = EventSourceResponse(ping_interval=HEARTBEAT_SECONDS)
        await response.prepare(request)
        self._streams.add(response)
        try:
            async with response:
                yield response
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(response)

    @staticmethod
    async def _send(response: EventSourceResponse, event: str, data: Any) -> None:
        await response.send(json.dumps(data, separators=(",", ":")), event=event)

    async def list_stream(self, request: web.Request) -> web.StreamResponse:
        await self._synced()
        namespace = request.query.get("namespace") or None
        async with self._sse(request) as response:
            last: Any = None
            while response.is_connected():
                changed = self.changed
                payload = self._list_payload(namespace)
                if payload != last:
                    await self._send(response, "rollouts", payload)
                    last = payload
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
                await asyncio.sleep(0.05)  # a burst of watch events becomes one message
        return response

    async def detail_json(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        loop = asyncio.get_running_loop()
        try:
            view = await loop.run_in_executor(None, self.build_detail, ns, name, None)
        except NotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except ApiException as exc:
            return web.json_response({"error": api_error(exc)}, status=exc.status or 500)
        return web.json_response(view)

    async def detail_stream(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        loop = asyncio.get_running_loop()
        watcher = RolloutWatch(Kube(self.api_client, ns), name).start()
        wake = asyncio.Event()
        done = threading.Event()

        def bridge() -> None:
            while not done.is_set():
                if watcher.changed.wait(HEARTBEAT_SECONDS):
                    watcher.changed.clear()
                loop.call_soon_threadsafe(wake.set)

        thread = threading.Thread(target=bridge, name=f"bridge-{name}", daemon=True)
        thread.start()
        try:
            async with self._sse(request) as response:
                last: Any = None
                while response.is_connected():
                    await wake.wait()
                    wake.clear()
                    await asyncio.sleep(0.1)  # settle a burst
                    try:
                        view = await loop.run_in_executor(
                            None, self.build_detail, ns, name, watcher
                        )
                    except NotFound as exc:
                        await self._send(response, "gone", {"error": str(exc)})
                        continue
                    except Exception as exc:
                        await self._send(response, "problem", {"error": str(exc)})
                        continue
                    if view != last:
                        await self._send(response, "detail", view)
                        last = view
        finally:
            done.set()
            watcher.stop()
        return response

    async def verb(self, request: web.Request) -> web.Response:
        ns, name, verb = (request.match_info[k] for k in ("ns", "name", "verb"))
        if verb not in views.VERBS:
            return web.json_response({"ok": False, "error": f"unknown action {verb}"}, status=404)
        loop = asyncio.get_running_loop()
        try:
            lines = await loop.run_in_executor(None, run_verb, self.api_client, ns, name, verb)
        except ApiException as exc:
            return web.json_response(
                {"ok": False, "status": exc.status, "error": api_error(exc)},
                status=exc.status if exc.status and 400 <= exc.status < 600 else 502,
            )
        except CliError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=409)
        return web.json_response({"ok": True, "message": "\n".join(lines)})

    # -- running ---------------------------------------------------------------------------

    async def _on_shutdown(self, app: web.Application) -> None:
        for response in list(self._streams):
            with contextlib.suppress(Exception):
                if response.task is not None:
                    response.task.cancel()

    async def start(self, port: int) -> web.AppRunner:
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        server: Any = site._server
        self.port = int(server.sockets[0].getsockname()[1])
        self.rollouts.start()
        return runner

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"


def _optional(read: Callable[[], Any]) -> Any:
    """A read the page can do without (RBAC may forbid it): empty on an API error."""
    try:
        return read()
    except ApiException:
        return []


async def serve(
    dashboard: Dashboard, port: int, on_ready: Callable[[str], None], stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set."""
    runner = await dashboard.start(port)
    try:
        on_ready(dashboard.url())
        await stop.wait()
    finally:
        dashboard.rollouts.stop()
        await runner.cleanup()
