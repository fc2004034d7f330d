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
import hashlib
import heapq
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import encode_basic_auth, hdrs, web

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import parameters
from bridge.core.errors import BadRequestBody, BridgeError, NotAuthenticated, NotPermitted, Throttled
from bridge.core.freshness import Entry, FreshnessTable, Key, Row, human_duration
from bridge.core.permissions import Grants
from bridge.core.values import HostState, ServiceState
from bridge.http.auth import authenticate
from bridge.http.credentials import Principal
from bridge.http.health import degraded_reasons
from bridge.http.keys import AUTH, CLUSTER, CONFIG, DELIVERY, FRESHNESS, METRICS, SESSIONS
from bridge.http.metrics import Metrics
from bridge.http.peer import USER_NAME, client_address
from bridge.http.recorder import RATE_WINDOW, Recorder, Refused
from bridge.http.sessions import SessionStore, clear_session_cookie, is_secure, session_token, set_session_cookie

log = logging.getLogger("naemon_bridge.status")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_FILES = {"status.js": "text/javascript", "status.css": "text/css"}
REFRESH_SECONDS = 5  # how often the page fetches its panels again (and reloads itself without JavaScript)
MAX_ROWS = 500  # freshness rows shown at most; the filter box narrows the rest
CHART_BUCKETS = 90  # points per series: 10 s each over the 15 minutes
SORTS = ("stale", "age", "-age", "name")  # stale first (then oldest), oldest first, newest first, by name
SESSION_COOKIE = "naemon_bridge_status"  # the login form's session (path /status)
CSRF_COOKIE = "naemon_bridge_login_csrf"  # the login form's CSRF token, the other half of the double submit
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


def human_bytes(count: int) -> str:
    """``512 bytes``, ``1.5 KiB``, ``2.0 GiB``."""
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


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
    dashed: bool = False  # drawn over the accepted lines it usually matches: dashed, so both show


def chart(recorder: Recorder, now: float, *, width: int = 600, height: int = 120,
          delivered: str = "delivered to the engine") -> dict[str, Any]:
    """The throughput chart's series, scaled into a ``width`` x ``height`` SVG box."""
    raw: list[tuple[str, str, list[float]]] = [
        (f"accepted · {dialect}", PALETTE[index % len(PALETTE)], series.rates(now, CHART_BUCKETS))
        for index, (dialect, series) in enumerate(sorted(recorder.accepted.items()))]
    raw.append((delivered, DELIVERED_COLOUR, recorder.delivered.rates(now, CHART_BUCKETS)))
    top = max([max(rates) for _, _, rates in raw] + [1.0])
    step = width / (CHART_BUCKETS - 1)
    per_minute = CHART_BUCKETS * 60 // RATE_WINDOW
    series = []
    for label, colour, rates in raw:
        points = " ".join(f"{i * step:.1f},{height - rate / top * (height - 4) - 2:.1f}"
                          for i, rate in enumerate(rates))
        series.append(Series(label, colour, points, sum(rates[-per_minute:]) / per_minute, max(rates),
                             dashed=colour == DELIVERED_COLOUR))
    return {"series": series, "top": top, "width": width, "height": height}


def cluster_view(status: Mapping[str, object]) -> dict[str, Any]:
    """A cluster role's status (``[cluster]``: ``bridge.engine.cluster``) as the page shows it: the role, the
    connection, the lag (a sink: messages for its engine not yet taken from the stream), and the rest as given."""
    shown = {"role", "connected", "server", "problem", "stream_lag", "pending_acks"}
    lag = status.get("stream_lag")
    return {"role": status.get("role", "?"), "connected": bool(status.get("connected")),
            "server": status.get("server"), "problem": status.get("problem"),
            "lag": None if lag is None else f"{lag} messages" + (
                f", {status['pending_acks']} awaiting acknowledgement" if status.get("pending_acks") else ""),
            "details": {key: value for key, value in status.items() if key not in shown}}


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
    cluster_status = app.get(CLUSTER)
    cluster = cluster_view(cluster_status()) if cluster_status is not None else None
    edge = cluster is not None and cluster["role"] == "edge"
    if cluster is not None and edge:  # its delivery task writes into JetStream
        transport = {"kind": "JetStream stream", "path": str(cluster["details"].get("stream", ""))}
    elif engine.query_socket is not None:
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
        "chart": chart(recorder, now, delivered="published to JetStream" if edge else "delivered to the engine"),
        "refusal_counts": recorder.refusals_by_reason(),
        "refused": refused_view(recorder, principal, now),
        "freshness": fresh, "sort": sort, "q": search,
        "cluster": cluster,  # None: not clustered, and the template leaves the panel out
        "logout_token": None,  # set for a session's page: its logout form's CSRF token
    }


# -- access ------------------------------------------------------------------------------------------------------

def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get(hdrs.ACCEPT, "")


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking, and how: with ``session`` (the cookie's token) the page offers a logout form."""

    principal: Principal
    session: str | None = None


class StatusLogins:
    """The login form's sessions — the application's one store (``SESSIONS``, ``bridge.http.sessions``), the one
    Alignak's ``/ws/login`` uses; the page's cookie carries its own session, so logging out of one ends only that
    one — and the secret its logout tokens are made with. A session holds a user *name*: each request reads that
    user's grants from the running config, and a user a reload removed is logged out."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        self._secret = secrets.token_bytes(32)

    def logout_token(self, session: str) -> str:
        """The logout form's CSRF token: bound to the session, so another site cannot post it."""
        return hmac.new(self._secret, b"logout:" + session.encode(), hashlib.sha256).hexdigest()


STATUS = web.AppKey("status_logins", StatusLogins)


def configured_principal(request: web.Request, name: str) -> Principal | None:
    """The configured user (with a password: tokens are for programs) named ``name``, as the config is now."""
    for user in request.app[CONFIG].current.users:
        if user.name == name and user.token is None:
            return Principal(user.name, grants=user.grants)
    return None


async def page_visitor(request: web.Request) -> Visitor | None:
    """Basic auth when the request carries it, else the login form's session cookie, else nobody (the caller
    sends them to log in). Raises NotAuthenticated or Throttled for wrong basic-auth credentials."""
    if hdrs.AUTHORIZATION in request.headers:
        return Visitor(await authenticate(request))
    logins = request.app[STATUS]
    token = session_token(request, SESSION_COOKIE)
    session = logins.sessions.lookup(token)
    if session is None or token is None:
        return None
    principal = configured_principal(request, session.user)
    if principal is None:  # removed by a reload
        logins.sessions.revoke(token)
        return None
    request[USER_NAME] = principal.name
    return Visitor(principal, token)


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
    visitor = await page_visitor(request)
    if visitor is None:
        if wants_html(request) and request.query.get("part") != "panels":
            raise web.HTTPSeeOther("/status/login")
        return error_page(request, 401, "authentication required: HTTP basic auth, or log in at /status/login")
    context = page_context(request.app, visitor.principal, request.query)
    if visitor.session is not None:
        context["logout_token"] = request.app[STATUS].logout_token(visitor.session)
    template = "panels.html" if request.query.get("part") == "panels" else "status.html"
    return secured(aiohttp_jinja2.render_template(template, request, context))


def login_form(request: web.Request, *, status: int = 200, message: str = "", username: str = "",
               ) -> web.StreamResponse:
    """The form, with a fresh CSRF token in it and in a cookie (the double submit: a page of another site can
    neither read the cookie nor, with SameSite=Strict, make the browser send it)."""
    token = secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template("login.html", request, {
        "csrf_token": token, "message": message, "username": username}, status=status)
    response.set_cookie(CSRF_COOKIE, token, path="/status", httponly=True, samesite="Strict",
                        secure=is_secure(request))
    return secured(response)


async def login_page(request: web.Request) -> web.StreamResponse:
    if await page_visitor(request) is not None:
        raise web.HTTPSeeOther("/status")
    return login_form(request)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password, sent = (form.get(name) for name in ("username", "password", "csrf_token"))
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return login_form(request, status=400, message="The form had expired: log in again.")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return login_form(request, status=400, message="Enter a user name and a password.")
    auth = request.app[AUTH]
    header = encode_basic_auth(username, password)
    known = auth.configured_login(header) or ""  # echoed back and listed: never a token or a mistyped password
    try:
        principal = await auth.authenticate(header, client_address(request))
    except (NotAuthenticated, Throttled) as exc:
        request.app[METRICS].refuse(exc, client=client_address(request), user=known, dialect=DIALECT)
        throttled = isinstance(exc, Throttled)
        response = login_form(request, status=429 if throttled else 403, username=known,
                              message=str(exc) if throttled else "Wrong user name or password.")
        if isinstance(exc, Throttled):
            response.headers[hdrs.RETRY_AFTER] = str(exc.retry_after)
        return response
    if configured_principal(request, principal.name) is None:  # a token given as a user name
        return login_form(request, status=403, message="Wrong user name or password.", username="")
    session = request.app[STATUS].sessions.create(principal.name)
    response = web.HTTPSeeOther("/status")
    set_session_cookie(response, request, SESSION_COOKIE, session.token, path="/status")
    clear_session_cookie(response, request, CSRF_COOKIE, path="/status")
    log.info("%s logged in to the status page from %s", principal.name, client_address(request))
    raise response


async def logout_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = session_token(request, SESSION_COOKIE)
    sent = form.get("csrf_token")
    logins = request.app[STATUS]
    if token is not None and isinstance(sent, str) and \
            hmac.compare_digest(sent.encode(), logins.logout_token(token).encode()):
        logins.sessions.revoke(token)
    elif token is not None and logins.sessions.lookup(token) is not None:
        return error_page(request, 400, "the logout form had expired: reload the page and log out again")
    response = web.HTTPSeeOther("/status/login")
    clear_session_cookie(response, request, SESSION_COOKIE, path="/status")
    raise response


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


def setup_status(app: web.Application, metrics: Metrics) -> None:
    """The templates and the page's routes (before the 405/404 of last resort)."""
    environment = aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("bridge.http", "templates"),
                                       autoescape=jinja2.select_autoescape(default=True),
                                       undefined=jinja2.StrictUndefined)
    environment.globals["state_name"] = state_name
    environment.filters["bytes"] = human_bytes
    app[STATUS] = StatusLogins(app[SESSIONS])
    app.router.add_get("/status", html_answered(status_page, metrics))
    app.router.add_get("/status/login", html_answered(login_page, metrics))
    app.router.add_post("/status/login", html_answered(login_submit, metrics))
    app.router.add_post("/status/logout", html_answered(logout_submit, metrics))
    app.router.add_get("/status/static/{name}", html_answered(static_file, metrics))

