"""``GET /status``: the page an operator looks at — the engine, the spool, throughput, refusals, freshness.

Server-rendered (Jinja2 through aiohttp-jinja2, templates in ``templates/``): it works as a plain page without
JavaScript, and without JavaScript it reloads itself (``<noscript>`` meta refresh). With JavaScript
(``static/status.js``, served from here: nothing is fetched from elsewhere) it fetches only its panels
(``?part=panels``) every ``REFRESH_SECONDS`` and swaps them in, keeping the filter box and the scroll position.

Access: HTTP basic auth, or the login form's session cookie. A user limited by ``hosts``/``services`` grants sees
only the objects those grants cover: in the freshness table, in the last line delivered, and in the refused
requests (only their own). The page changes nothing, so a GET needs no CSRF token; the forms that do change
something (login, logout) carry one.

The chart is SVG drawn here: a polyline per series, no library.
"""

from __future__ import annotations

import datetime
import heapq
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import parameters
from bridge.core.errors import BadRequestBody, BridgeError, NotAuthenticated, NotPermitted, Throttled
from bridge.core.freshness import Entry, FreshnessTable, Key, Row, human_duration
from bridge.core.permissions import Grants
from bridge.core.values import HostState, ServiceState
from bridge.http.auth import authenticate
from bridge.http.credentials import Principal
from bridge.http.health import degraded_reasons
from bridge.http.keys import CONFIG, DELIVERY, FRESHNESS, METRICS
from bridge.http.metrics import Metrics
from bridge.http.peer import USER_NAME, client_address
from bridge.http.recorder import RATE_WINDOW, Recorder, Refused

log = logging.getLogger("naemon_bridge.status")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_FILES = {"status.js": "text/javascript", "status.css": "text/css"}
REFRESH_SECONDS = 5  # how often the page fetches its panels again (and reloads itself without JavaScript)
MAX_ROWS = 500  # freshness rows shown at most; the filter box narrows the rest
CHART_BUCKETS = 90  # points per series: 10 s each over the 15 minutes
SORTS = ("stale", "age", "-age", "name")  # stale first (then oldest), oldest first, newest first, by name
DIALECT = "status"  # how the refusal list names this page's own refusals
# Nothing from elsewhere, no inline script or style: the page's own script and style sheet only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
DELIVERED_COLOUR = "#d62728"


# -- what the page shows ---------------------------------------------------------------------------------------------

def when(stamp: float | None, now: float) -> dict[str, str] | None:
    """A time as the page shows it: UTC, and how long ago."""
    if stamp is None:
        return None
    text = datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"utc": text, "ago": human_duration(max(0.0, now - stamp))}


def line_objects(line: bytes) -> tuple[str | None, str | None] | None:
    """The host and service an external-command line acts on; None when it names no host (or is not one)."""
    text = line.decode("utf-8", "replace")
    _, _, command = text.partition("] ")
    name, _, rest = command.partition(";")
    spec = COMMANDS.get(name)
    if spec is None:
        return None
    fields = rest.split(";")
    host = service = None
    for param, value in zip(parameters(spec), fields, strict=False):
        if param.type is ArgType.HOST:
            host = value
        elif param.type is ArgType.SERVICE:
            service = value
    return None if host is None else (host, service)


def visible_line(line: bytes, grants: Grants) -> bool:
    if not grants.limited:
        return True
    objects = line_objects(line)
    return objects is not None and grants.may_touch(*objects)


def state_name(row: Row) -> str:
    if row.state is None:
        return "—"
    kind = HostState if row.service_description is None else ServiceState
    try:
        return kind(row.state).name
    except ValueError:
        return str(row.state)


@dataclass(frozen=True, slots=True)
class FreshnessView:
    rows: list[Row]
    shown: int  # rows after the filter (``rows`` holds at most MAX_ROWS of them)
    counts: dict[str, int]  # fresh, stale, never (reported): disjoint, of every object the user may see


def _sort_key(sort: str) -> Callable[[tuple[Key, Entry]], tuple[Any, ...]]:
    """Older first is a smaller last result; the name breaks ties."""
    if sort == "stale":
        return lambda item: (not item[1].stale, item[1].last_result, item[0][0], item[0][1] or "")
    if sort == "age":
        return lambda item: (item[1].last_result, item[0][0], item[0][1] or "")
    if sort == "-age":
        return lambda item: (-item[1].last_result, item[0][0], item[0][1] or "")
    return lambda item: (item[0][0], item[0][1] is not None, item[0][1] or "")


def freshness_view(table: FreshnessTable, grants: Grants, *, query: str, sort: str) -> FreshnessView:
    """The rows to show: only of objects ``grants`` cover, matching ``query`` (host or service, any case), the
    first MAX_ROWS in ``sort`` order — picked without sorting them all (10,000 objects: ~5 ms, not ~30)."""
    items: Iterable[tuple[Key, Entry]] = table.items()
    if grants.limited:
        items = [(key, entry) for key, entry in items if grants.may_touch(*key)]
    else:
        items = list(items)
    stale = sum(entry.stale for _, entry in items)
    never = sum(1 for _, entry in items if not entry.stale and not entry.reported)
    counts = {"fresh": len(items) - stale - never, "stale": stale, "never": never}
    needle = query.strip().lower()
    if needle:
        items = [(key, entry) for key, entry in items if needle in key[0].lower() or needle in (key[1] or "").lower()]
    now = table.now()
    chosen = heapq.nsmallest(MAX_ROWS, items, key=_sort_key(sort))
    return FreshnessView([table.row(key, entry, now) for key, entry in chosen], len(items), counts)


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    colour: str
    points: str  # the SVG polyline's points
    latest: float  # per second over the last minute
    peak: float


def chart(recorder: Recorder, now: float, *, width: int = 600, height: int = 120) -> dict[str, Any]:
    """The throughput chart's series, scaled into a ``width`` x ``height`` SVG box."""
    raw: list[tuple[str, str, list[float]]] = [
        (f"accepted · {dialect}", PALETTE[index % len(PALETTE)], series.rates(now, CHART_BUCKETS))
        for index, (dialect, series) in enumerate(sorted(recorder.accepted.items()))]
    raw.append(("delivered to the engine", DELIVERED_COLOUR, recorder.delivered.rates(now, CHART_BUCKETS)))
    top = max([max(rates) for _, _, rates in raw] + [1.0])
    step = width / (CHART_BUCKETS - 1)
    per_minute = CHART_BUCKETS * 60 // RATE_WINDOW
    series = []
    for label, colour, rates in raw:
        points = " ".join(f"{i * step:.1f},{height - rate / top * (height - 4) - 2:.1f}"
                          for i, rate in enumerate(rates))
        series.append(Series(label, colour, points, sum(rates[-per_minute:]) / per_minute, max(rates)))
    return {"series": series, "top": top, "width": width, "height": height}


def refused_view(recorder: Recorder, principal: Principal, now: float) -> list[dict[str, Any]]:
    """The last refused requests, newest first; a limited user sees only their own."""
    entries: Iterable[Refused] = recorder.refused()
    if principal.grants.limited:
        entries = (entry for entry in entries if entry.user == principal.name)
    return [{"when": when(entry.at, now), "client": entry.client, "user": entry.user, "dialect": entry.dialect,
             "reason": entry.reason, "message": entry.message} for entry in entries]


def page_context(app: web.Application, principal: Principal, query: Mapping[str, str]) -> dict[str, Any]:
    metrics: Metrics = app[METRICS]
    recorder = metrics.recent
    now = recorder.now()
    config = app[CONFIG].current
    delivery = app[DELIVERY]
    health = delivery.health()
    reasons = degraded_reasons(health, config.health)
    engine = config.engine
    if engine.query_socket is not None:
        transport = {"kind": "Naemon's query handler", "path": str(engine.query_socket)}
    else:
        transport = {"kind": "command pipe", "path": str(engine.command_file)}
    last: dict[str, Any] | None = None
    if delivery.last_delivered is not None:
        at, line = delivery.last_delivered
        shown = visible_line(line, principal.grants)
        last = {"when": when(at, now), "text": line.decode("utf-8", "replace")[:500] if shown else None}
    sort = query.get("sort", "stale")
    sort = sort if sort in SORTS else "stale"
    search = query.get("q", "")[:200]
    fresh = freshness_view(app[FRESHNESS], principal.grants, query=search, sort=sort)
    fill = health.spool_fill
    return {
        "user": principal.name, "limited": principal.grants.limited, "refresh": REFRESH_SECONDS,
        "generated": when(now, now),
        "status": "degraded" if reasons else "ok", "reasons": reasons,
        "engine": {"reachable": health.engine_reachable, "since": when(delivery.reachability_since, now),
                   "problem": health.engine_problem, "stalled_s": health.stalled_s, "transport": transport,
                   "last": last, "kind": engine.kind.value},
        "spool": {"results": health.spool_results, "bytes": health.spool_bytes, "max_bytes": health.spool_max_bytes,
                  "oldest": None if health.oldest_age_s is None else human_duration(health.oldest_age_s),
                  "fill": fill, "fill_percent": f"{fill:.1%}"},
        "chart": chart(recorder, now),
        "refusal_counts": recorder.refusals_by_reason(),
        "refused": refused_view(recorder, principal, now),
        "freshness": fresh, "sort": sort, "q": search,
        # The cluster's role and its lag go here once the bridge has a cluster (the JetStream work): None is
        # "not clustered", and the template leaves the panel out.
        "cluster": None,
        "logout_token": None,  # set for a session's page: its logout form's CSRF token
    }


# -- access ------------------------------------------------------------------------------------------------------

def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get(hdrs.ACCEPT, "")


async def page_principal(request: web.Request) -> Principal | None:
    """Who is looking: basic auth when the request carries it, else nobody (the caller sends them to log in).
    Raises NotAuthenticated or Throttled for wrong credentials."""
    if hdrs.AUTHORIZATION in request.headers:
        return await authenticate(request)
    return None


def secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: web.Request, status: int, message: str) -> web.StreamResponse:
    response = aiohttp_jinja2.render_template("error.html", request, {"status": status, "message": message},
                                              status=status)
    if status == 401:
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="naemon-bridge status", charset="UTF-8"'
    return secured(response)


async def status_page(request: web.Request) -> web.StreamResponse:
    unknown = sorted(set(request.query) - {"q", "sort", "part"})
    if unknown:
        return error_page(request, 400, f"{unknown[0]!r} is not a parameter of /status (it takes q, sort and part)")
    principal = await page_principal(request)
    if principal is None:
        if wants_html(request) and request.query.get("part") != "panels":
            raise web.HTTPSeeOther("/status/login")
        return error_page(request, 401, "authentication required: HTTP basic auth, or log in at /status/login")
    context = page_context(request.app, principal, request.query)
    template = "panels.html" if request.query.get("part") == "panels" else "status.html"
    return secured(aiohttp_jinja2.render_template(template, request, context))


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    kind = STATIC_FILES.get(name)
    if kind is None:
        return error_page(request, 404, f"no {request.path} here")
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=kind)
    response.headers["Cache-Control"] = "max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def error_status(error: BridgeError) -> int:
    if isinstance(error, Throttled):
        return 429
    if isinstance(error, NotAuthenticated):
        return 401
    if isinstance(error, NotPermitted):
        return 403
    return error.status if isinstance(error, BadRequestBody) else 400


def html_answered(view: Any, metrics: Metrics) -> Any:
    """``view`` with its refusals as an HTML page (and on the refusal list), and any bug a logged 500."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await view(request)
        except BridgeError as exc:
            metrics.refuse(exc, client=client_address(request), user=request.get(USER_NAME, ""), dialect=DIALECT)
            status = error_status(exc)
            response = error_page(request, status, str(exc))
            if isinstance(exc, Throttled):
                response.headers[hdrs.RETRY_AFTER] = str(exc.retry_after)
            return response
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unexpected error answering %s %r", request.method, request.path)
            return web.Response(text="internal error: see the bridge's log", status=500)

    handler.__name__ = getattr(view, "__name__", "handler")
    return handler


def setup_status(app: web.Application, metrics: Metrics, extra_routes: Sequence[tuple[str, str, Any]] = ()) -> None:
    """The templates and the page's routes (before the 405/404 of last resort)."""
    environment = aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("bridge.http", "templates"),
                                       autoescape=jinja2.select_autoescape(default=True),
                                       undefined=jinja2.StrictUndefined)
    environment.globals["state_name"] = state_name
    app.router.add_get("/status", html_answered(status_page, metrics))
    app.router.add_get("/status/static/{name}", html_answered(static_file, metrics))
    for method, path, view in extra_routes:
        app.router.add_route(method, path, html_answered(view, metrics))

