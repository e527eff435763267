"""What the ``web`` and ``webhook`` kinds share: one HTTP client (made on first use, always
on the current configuration), the URL a decision record names, and closing."""

from __future__ import annotations

import contextlib

from ramp.analysis.checkhttp import CheckHttp, render_url
from ramp.analysis.kinds.base import Env, QueryContext
from ramp.analysis.promql import QueryTemplateError


class HttpKind:
    def __init__(self, env: Env) -> None:
        self.env = env
        self._http: CheckHttp | None = None

    @property
    def http(self) -> CheckHttp:
        if self._http is None:
            self._http = CheckHttp(self.env.config)
        self._http.config = self.env.config
        return self._http

    @staticmethod
    def described(method: str, url: str, context: QueryContext) -> str:
        """``METHOD url`` without its query string (it may carry secrets)."""
        with contextlib.suppress(QueryTemplateError):  # as written, when it cannot render
            url = render_url(url, context)
        return f"{method} {url.split('?', 1)[0]}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
