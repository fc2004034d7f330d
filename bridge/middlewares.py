"""Failures rendered in the caller's API dialect: one middleware, one renderer per API style."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from bridge.errors import BridgeError
from bridge.metrics import Metrics

log = logging.getLogger("naemon_bridge.http")

Renderer = Callable[[int, str, BridgeError | None], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_middleware(renderers: Mapping[str, Renderer], style_of: Callable[[str], str],
                     metrics: Metrics) -> Middleware:
    """Map BridgeErrors and aiohttp's own HTTP errors (404, 405, 413 …) to the dialect ``style_of(path)`` names,
    and time every request.

    An unexpected exception is a bug: it is logged with its traceback and answered 500, nothing else leaks.
    """

    durations = {style: metrics.request_duration.labels(style) for style in renderers}  # looked up once

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        style = style_of(request.path)
        started = time.perf_counter()
        try:
            return await _answer(request, handler, renderers[style])
        finally:
            durations[style].observe(time.perf_counter() - started)

    async def _answer(request: web.Request, handler: Handler, render: Renderer) -> web.StreamResponse:
        try:
            return await handler(request)
        except BridgeError as exc:
            metrics.refuse(exc)
            return render(0, str(exc), exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text or exc.reason
            if exc.status in (404, 405):
                message = f"{exc.reason}: no {request.method} {request.path} here"
            return render(exc.status, message, None)
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            return render(500, "internal error: see the bridge's log", None)

    return middleware
