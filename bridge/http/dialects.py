"""What an intake dialect is to the HTTP layer, and every answer in its caller's dialect.

A dialect (one module in ``bridge.intake``) is one ``Dialect`` value: its routes, which paths answer in its error
shape, its error renderer and its part of the OpenAPI document. ``bridge.intake.DIALECTS`` lists them; this layer
never names one. Paths no dialect claims (``/health``, ``/api/freshness``, unknown ones) answer in the first
dialect's shape.

Each route's view is wrapped once, when the routes are set up, with its dialect's renderer and its request timer.
An aiohttp middleware would do the same job, but once an application has any middleware aiohttp wraps every
request in two extra layers; measured under wrk, that cost 11 % of single-result throughput. So: no middlewares,
a wrapper per route, and two routes of last resort that answer 405 and 404 in the right dialect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.core.errors import BridgeError
from bridge.core.values import EngineKind
from bridge.http.metrics import Metrics
from bridge.http.peer import USER_NAME, client_address

log = logging.getLogger("naemon_bridge.http")

# (the request, an HTTP status or 0 to take it from the error, the message, the error): the request lets a dialect
# answer in the format its caller asked for (op5's ?format=xml).
Renderer = Callable[[web.Request, int, str, BridgeError | None], web.Response]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The dialect of the request being answered, set by ``answered``: the status page counts accepted results by it.
CURRENT_DIALECT: ContextVar[str] = ContextVar("naemon_bridge_dialect", default="")


@dataclass(frozen=True, slots=True)
class ApiDescription:
    """A dialect's part of the OpenAPI document (``bridge.http.openapi`` puts the parts together)."""

    paths: dict[str, Any]
    schemas: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)


OpenApiPart = Callable[[EngineKind], ApiDescription]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    view: View


@dataclass(frozen=True, slots=True)
class Dialect:
    """One way senders speak to the bridge, as the HTTP layer sees it."""

    name: str  # the label of its request metrics
    routes: Sequence[Route]
    render_error: Renderer
    claims: Callable[[str], bool]  # does a path (known or not) answer in this dialect's shape?
    openapi: OpenApiPart
    error_schema: str  # the name of the component schema its error answers follow
    internal_error: bytes  # the body of its 500 answer of last resort, built beforehand so it cannot fail
    # The routes a worker process of ``[server] workers`` answers itself (their work scales with cores); a worker
    # forwards every other request to its hub.
    worker_routes: Sequence[Route] = field(default=())
    # A dialect outside HTTP (NSCA's TCP protocol): its listener, run by the process that delivers, started once
    # the HTTP site listens and stopped before the delivery task drains. It does nothing when not configured.
    listener: Callable[[web.Application], AbstractAsyncContextManager[None]] | None = None


def dialect_for(path: str, dialects: Sequence[Dialect]) -> Dialect:
    """Which dialect answers ``path``: the one that claims it, else the first."""
    return next((d for d in dialects if d.claims(path)), dialects[0])


def answered(view: View, dialect: Dialect, metrics: Metrics, *, timed: bool = True) -> View:
    """``view`` with its failures rendered in ``dialect``'s shape and its time observed.

    BridgeErrors and aiohttp's own HTTP errors (413 for a body too large …) become the dialect's error answer;
    any other exception is a bug: logged once with its traceback and answered 500 in the dialect, with a body
    built beforehand so that this last answer cannot fail too.
    """
    render, style = dialect.render_error, dialect.name

    async def handler(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        CURRENT_DIALECT.set(style)
        try:
            try:
                return await view(request)
            except BridgeError as exc:
                note_refusal(metrics, request, exc)
                return render(request, 0, str(exc), exc)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                return render(request, exc.status, exc.text or exc.reason, None)
        except web.HTTPException:
            raise  # a redirect is an answer, not a failure
        except Exception:
            log.exception("unexpected error answering %s %r", request.method, request.path)
            return internal_error(dialect)
        finally:
            if timed:
                metrics.observe_request(style, time.perf_counter() - started)

    handler.__name__ = getattr(view, "__name__", "handler")
    return handler


def note_refusal(metrics: Metrics, request: web.Request, error: BridgeError) -> None:
    """Count a refusal and list it for the status page: who (address, configured user) and in which dialect.
    ``answered`` does it for the errors it renders; a view that answers a refusal itself (Alignak's 200 with
    ``_status: ERR``) calls it."""
    metrics.refuse(error, client=client_address(request), user=request.get(USER_NAME, ""),
                   dialect=CURRENT_DIALECT.get())


def internal_error(dialect: Dialect) -> web.Response:
    """The 500 answer of last resort, in ``dialect``'s shape, from bytes built beforehand."""
    return web.Response(body=dialect.internal_error, status=500, content_type="application/json")


def method_not_allowed(allowed: Iterable[str], dialect: Dialect, metrics: Metrics) -> View:
    methods = sorted(set(allowed))

    async def view(request: web.Request) -> web.StreamResponse:
        response = dialect.render_error(request, 405, f"Method Not Allowed: no {request.method} {request.path} "
                                                      f"here (allowed: {', '.join(methods)})", None)
        response.headers["Allow"] = ", ".join(methods)
        return response

    return answered(view, dialect, metrics)


def not_found(dialects: Sequence[Dialect], metrics: Metrics) -> View:
    async def view(request: web.Request) -> web.StreamResponse:
        dialect = dialect_for(request.path, dialects)
        metrics.observe_request(dialect.name, 0.0)
        return dialect.render_error(request, 404, f"Not Found: no {request.method} {request.path} here", None)

    return view
