"""Every answer in its caller's API dialect: op5's JSON errors or Alignak's ``_status: ERR``.

Each route's view is wrapped once, when the routes are set up, with its dialect's renderer and its request timer.
An aiohttp middleware would do the same job, but once an application has any middleware aiohttp wraps every
request in two extra layers; measured under wrk, that cost 11 % of single-result throughput. So: no middlewares,
a wrapper per route, and two routes of last resort that answer 405 and 404 in the right dialect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiohttp import web

from bridge import api_alignak, api_op5
from bridge.errors import BridgeError
from bridge.metrics import Metrics

log = logging.getLogger("naemon_bridge.http")

Renderer = Callable[[int, str, BridgeError | None], web.Response]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]

RENDERERS: dict[str, Renderer] = {"op5": api_op5.render_error, "alignak": api_alignak.render_error}


def api_style(path: str) -> str:
    """Which dialect answers ``path``: Alignak's for its endpoints, op5's JSON for the rest."""
    alignak = ("/host", "/command", "/event")
    return "alignak" if path in alignak or path.startswith(("/host/", "/ws/")) else "op5"


def answered(view: View, style: str, metrics: Metrics, *, timed: bool = True) -> View:
    """``view`` with its failures rendered in ``style``'s dialect and its time observed.

    BridgeErrors and aiohttp's own HTTP errors (413 for a body too large …) become the dialect's error answer;
    any other exception is a bug: logged once with its traceback and answered 500 in the dialect, with a body
    built beforehand so that this last answer cannot fail too.
    """
    render = RENDERERS[style]

    async def handler(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            try:
                return await view(request)
            except BridgeError as exc:
                metrics.refuse(exc)
                return render(0, str(exc), exc)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                return render(exc.status, exc.text or exc.reason, None)
        except web.HTTPException:
            raise  # a redirect is an answer, not a failure
        except Exception:
            log.exception("unexpected error answering %s %r", request.method, request.path)
            return internal_error(style)
        finally:
            if timed:
                metrics.observe_request(style, time.perf_counter() - started)

    handler.__name__ = getattr(view, "__name__", "handler")
    return handler


_INTERNAL_ERROR = {
    "op5": orjson.dumps({"error": "Internal Server Error", "full_error": "internal error: see the bridge's log"}),
    "alignak": orjson.dumps({"_status": "ERR", "_issues": ["internal error: see the bridge's log"]}),
}


def internal_error(style: str) -> web.Response:
    """The 500 answer of last resort, in ``style``'s dialect."""
    return web.Response(body=_INTERNAL_ERROR[style], status=500, content_type="application/json")


def method_not_allowed(allowed: Iterable[str], style: str, metrics: Metrics) -> View:
    methods = sorted(set(allowed))

    async def view(request: web.Request) -> web.StreamResponse:
        response = RENDERERS[style](405, f"Method Not Allowed: no {request.method} {request.path} here "
                                         f"(allowed: {', '.join(methods)})", None)
        response.headers["Allow"] = ", ".join(methods)
        return response

    return answered(view, style, metrics)


def not_found(metrics: Metrics) -> View:
    async def view(request: web.Request) -> web.StreamResponse:
        style = api_style(request.path)
        metrics.observe_request(style, 0.0)
        return RENDERERS[style](404, f"Not Found: no {request.method} {request.path} here", None)

    return view
