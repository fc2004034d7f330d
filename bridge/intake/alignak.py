"""Alignak WS style: ``PATCH /host/<host_name>`` (alignak-ws.md). Maps HTTP to ``bridge.core.alignak`` and back;
its routes, error shape and OpenAPI part are ``DIALECT``.

Alignak answers problems with ``_status: ERR`` and HTTP 200; only transport problems get other codes (malformed
JSON 400, content type 415, auth 401).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import BasicAuth, hdrs, web

from bridge.core.alignak import HostUpdate, host_record, plan_command, plan_event, plan_host_update, stamped
from bridge.core.commands import command_text
from bridge.core.errors import (
    BadRequestBody,
    BridgeError,
    EngineRefused,
    EngineUnavailable,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    Throttled,
    UnknownCommand,
)
from bridge.core.freshness import Entry, freshness_feedback
from bridge.core.values import Command, EngineKind, HostState, ServiceState
from bridge.http.auth import authenticate, client_address
from bridge.http.bodies import read_body
from bridge.http.credentials import Principal
from bridge.http.dialects import ApiDescription, Dialect, Route, note_refusal
from bridge.http.jsonio import DocumentRefused, json_answer, loads
from bridge.http.keys import AUTH, CLOCK, CONFIG, ENGINE_FILES, FRESHNESS, METRICS, RECENT, SESSIONS
from bridge.http.openapi import SECURE, Schema, errors, json_body, ref
from bridge.http.peer import USER_NAME
from bridge.http.sessions import clear_session_cookie, session_token, set_session_cookie
from bridge.http.submission import admit, submit_commands

SESSION_COOKIE = "web-services"  # alignak-module-ws's: cherrypy's session named after the module ("web-services")
# What GET /ws lists: alignak-module-ws's endpoints the bridge serves (alignak_logs, alignak_map and hostgroup
# need Alignak's backend or arbiter).
ENDPOINTS = ("api", "api_full", "are_you_alive", "command", "event", "host", "index", "login", "logout")
_BODY_METHODS = ("POST", "PUT", "PATCH")


def _principal_named(request: web.Request, name: str) -> Principal | None:
    """The configured user a session stands for, with their current grants (None: gone since a reload)."""
    for user in request.app[CONFIG].current.users:
        if user.name == name:
            return Principal(user.name, grants=user.grants)
    return None


def _basic_token(request: web.Request) -> str | None:
    """The user name of a ``Basic <token>:`` header (Alignak's way of sending a token), else None."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if not header:
        return None
    try:
        credentials = BasicAuth.decode(header, encoding="utf-8")
    except ValueError:
        return None
    return credentials.login if not credentials.password else None


async def alignak_principal(request: web.Request) -> Principal:
    """Who calls: the session of the cookie or of a ``Basic <session token>:`` header, else the configured
    users and tokens (``bridge.http.credentials``, with its throttling)."""
    sessions = request.app[SESSIONS]
    for token in (session_token(request, SESSION_COOKIE), _basic_token(request)):
        session = sessions.lookup(token)
        if session is not None:
            principal = _principal_named(request, session.user)
            if principal is not None:
                request[USER_NAME] = principal.name  # for the status page's list of refused requests
                return principal
            sessions.revoke(token)
    return await authenticate(request)


def _body_expected(request: web.Request) -> None:
    """cherrypy's ``json_in``: a body-carrying request that is not JSON is 415, before anything else."""
    if request.method in _BODY_METHODS and request.content_type != "application/json":
        raise BadRequestBody(415, f"Content-Type must be application/json, not '{request.content_type}'")


async def host_view(request: web.Request) -> web.Response:
    """``/host``: GET the host, PATCH or POST a host document (Alignak's ``host``)."""
    _body_expected(request)
    principal = await alignak_principal(request)
    if request.method == "GET":
        return await _host_get(request, principal)
    if request.method not in ("PATCH", "POST"):
        return json_answer({"_status": "ERR", "_error": "You must only GET, PATCH or POST on this endpoint."})
    document = await _document(request)
    config = request.app[CONFIG].current
    files = request.app[ENGINE_FILES]
    now = int(request.app[CLOCK]())
    update = plan_host_update(document, request.match_info.get("host_name"), known=await files.objects(),
                              status=await files.status(), now=now, options=config.alignak,
                              recent=request.app[RECENT])
    if update.issues:
        request.app[METRICS].refused.labels("invalid").inc()
    if update.commands:
        await admit(request.app, principal, update.commands)
        await submit_commands(request.app, update.commands)
        for key, value in update.changes:
            request.app[RECENT].note(key, value, now)
    _add_freshness(request.app, update)
    return json_answer(update.answer())


async def _host_get(request: web.Request, principal: Principal) -> web.Response:
    """Alignak's ``GET /host``: ``{"_status": "OK", "_result": [host]}``. A user sees only the hosts their grants
    cover: any other answers as a host that does not exist."""
    name = request.query.get("name") or request.match_info.get("host_name")
    if not name:
        return json_answer({"_status": "ERR", "_result": "", "_issues": ["Missing targeted element."]})
    files = request.app[ENGINE_FILES]
    known = await files.objects()
    if known is None:
        return json_answer({"_status": "ERR", "_error": "Not available without backend access."})
    record = host_record(name, known=known, status=await files.status()) \
        if principal.grants.may_touch(name, None) else None
    if record is None:
        return json_answer({"_status": "ERR", "_result": [], "_issues": [f"Requested host '{name}' does not exist"]})
    app, fresh = request.app, request.app[CONFIG].current.freshness
    record.update(_freshness_fields(app[FRESHNESS].entry(name, None), fresh.stale_host_state, record))
    return json_answer({"_status": "OK", "_result": [record]})


def _freshness_fields(entry: Entry | None, stale_state: HostState | ServiceState,
                      values: Mapping[str, object]) -> dict[str, object]:
    """Alignak's freshness fields as the bridge's freshness table has them: the threshold in effect when the
    bridge tracks one, else the object's configured value."""
    fields = freshness_feedback(entry, stale_state)
    found: dict[str, object] = {"freshness_state": fields["freshness_state"]}
    if "stale" in fields:  # the bridge's own: whether the object is stale now
        found["stale"] = fields["stale"]
    if entry is not None and entry.threshold is not None:
        found["check_freshness"] = fields["check_freshness"]
        found["freshness_threshold"] = fields["freshness_threshold"]
    elif "freshness_threshold" in values:
        found["freshness_threshold"] = values["freshness_threshold"]
    return found


def _add_freshness(app: web.Application, update: HostUpdate) -> None:
    """The freshness fields of ``_feedback`` that feedback_host / feedback_service ask for, as the bridge's table
    has them once the update is applied."""
    table, config = app[FRESHNESS], app[CONFIG].current.freshness
    for slot in update.slots:
        stale = config.stale_host_state if slot.service is None else config.stale_service_state
        fields = _freshness_fields(table.entry(slot.host, slot.service), stale, slot.values)
        slot.values.update({name: value for name, value in fields.items() if name in slot.wanted})


async def command_view(request: web.Request) -> web.Response:
    """``POST /command``: any external command, under the same table and permissions as op5's API."""
    _body_expected(request)
    principal = await alignak_principal(request)
    if request.method != "POST":
        return json_answer({"_status": "ERR", "_error": "You must only POST on this endpoint."})
    document = await _document(request)
    if not document:
        return json_answer({"_status": "ERR", "_error": "You must POST parameters on this endpoint."})
    config = request.app[CONFIG].current
    try:
        command = plan_command(document, engine=config.engine.kind, now=int(request.app[CLOCK]()),
                               author=principal.name)
    except (InvalidInput, UnknownCommand) as exc:
        note_refusal(request.app[METRICS], request, exc)
        return json_answer({"_status": "ERR", "_error": str(exc)})
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    return json_answer({"_status": "OK", "_command": _shown(command, document)})


async def event_view(request: web.Request) -> web.Response:
    """``POST /event``: a comment on a host or service (ADD_HOST_COMMENT / ADD_SVC_COMMENT)."""
    _body_expected(request)
    principal = await alignak_principal(request)
    if request.method != "POST":
        return json_answer({"_status": "ERR", "_issues": ["You must only POST on this endpoint."]})
    document = await _document(request)
    if not document:
        return json_answer({"_status": "ERR", "_issues": ["You must POST parameters on this endpoint."]})
    try:
        command = plan_event(document, now=int(request.app[CLOCK]()))
    except InvalidInput as exc:
        note_refusal(request.app[METRICS], request, exc)
        return json_answer({"_status": "ERR", "_issues": [str(exc)]})
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    return json_answer({"_status": "OK", "_result": [_shown(command, document)]})


def _shown(command: Command, document: Mapping[str, object]) -> str:
    """The line as Alignak's answer shows it: with ``[ts]`` only when the client gave the time."""
    text = command_text(command)
    return text if stamped(document) else text.partition("] ")[2]


async def login_view(request: web.Request) -> web.Response:
    """``POST /ws/login``: ``{"username", "password"}`` (or basic auth) → a session token in ``_result`` and the
    session cookie. A token (as the user name, no password) that is a live session or a configured token is
    answered as itself; a user name and password open a new session."""
    if request.method != "POST":
        return json_answer({"_status": "ERR", "_issues": ["You must only POST on this endpoint."]})
    _body_expected(request)
    document = await _document(request)
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header:
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            return json_answer({"_status": "ERR", "_issues": ["Access denied."]})
        username, password = credentials.login, credentials.password
    else:
        if not document:
            return json_answer({"_status": "ERR", "_issues": ["You must POST parameters on this endpoint."]})
        username, password = document.get("username"), document.get("password") or ""
        if username is None:
            return json_answer({"_status": "ERR", "_issues": ["Missing username parameter."]})
        if not isinstance(username, str) or not isinstance(password, str):
            return json_answer({"_status": "ERR", "_issues": ["Access denied."]})
    sessions = request.app[SESSIONS]
    if not password and sessions.lookup(username) is not None:
        token = cookie = username
    else:
        try:
            # The header a basic-auth client would send: one way to check credentials. (Not BasicAuth(...):
            # it refuses a ':' in the name with a ValueError, which would have been a 500.)
            header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            principal = await request.app[AUTH].authenticate(header, client_address(request))
        except NotAuthenticated:
            return json_answer({"_status": "ERR", "_issues": ["Access denied."]})
        cookie = sessions.create(principal.name).token
        token = cookie if password else username  # a configured token stays the client's token
    response = json_answer({"_status": "OK", "_result": [token]})
    set_session_cookie(response, request, SESSION_COOKIE, cookie)
    return response


async def logout_view(request: web.Request) -> web.Response:
    """``/ws/logout``: ends the session of the cookie (and of a ``Basic <session token>:`` header)."""
    sessions = request.app[SESSIONS]
    sessions.revoke(session_token(request, SESSION_COOKIE))
    sessions.revoke(_basic_token(request))
    response = json_answer({"_status": "OK", "_result": "Logged out"})
    clear_session_cookie(response, request, SESSION_COOKIE)
    return response


async def api_view(request: web.Request) -> web.Response:
    """``GET /ws``, ``/ws/index``, ``/ws/api``: the endpoint names, as Alignak lists its methods."""
    await alignak_principal(request)
    return json_answer(list(ENDPOINTS))


async def api_full_view(request: web.Request) -> web.Response:
    await alignak_principal(request)
    full: dict[str, object] = {name: {"doc": _ENDPOINT_DOCS[name], "args": _ENDPOINT_ARGS.get(name, {})}
                               for name in ENDPOINTS}
    full["side_note"] = "The bridge's OpenAPI document, /api/openapi.json, describes every endpoint."
    return json_answer(full)


async def alive_view(request: web.Request) -> web.Response:
    await alignak_principal(request)
    return json_answer("Yes I am :)")


_ENDPOINT_DOCS = {
    "api": "List the methods available on the interface", "api_full": "List the api methods and their parameters",
    "are_you_alive": "Is the module alive", "command": "Request to execute an external command",
    "event": "Notify an event", "host": "Declare an host and its data", "index": "Wrapper to call api from /",
    "login": "Validate user credentials", "logout": "Clean the session",
}
_ENDPOINT_ARGS = {"host": {"name": None}}


async def _document(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise BadRequestBody(415, f"Content-Type must be application/json, not '{request.content_type}'")
    body = await read_body(request)
    if not body.strip():
        if request.method == "GET":
            return {}
        raise BadRequestBody(400, "Invalid JSON document: the body is empty")
    try:
        document = loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequestBody(400, f"Invalid JSON document: {exc.msg} at line {exc.lineno} column {exc.colno} "
                                  f"(JSON needs true/false, not Python's True/False, and no trailing commas)") from None
    except UnicodeDecodeError:
        raise BadRequestBody(400, "Invalid JSON document: the body is not UTF-8") from None
    except DocumentRefused as exc:
        raise BadRequestBody(400, f"Invalid JSON document: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequestBody(400, f"Invalid JSON document: expected an object, not {type(document).__name__}")
    return document


def render_error(request: web.Request, status: int, message: str, error: BridgeError | None) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(error, BadRequestBody):
        status = error.status
    elif isinstance(error, NotAuthenticated):
        status = 401
        headers["WWW-Authenticate"] = 'Basic realm="naemon-bridge"'
    elif isinstance(error, NotPermitted):
        status = 403
    elif isinstance(error, Throttled):
        status = 429
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, EngineUnavailable):
        status = 503
        headers["Retry-After"] = "5"
    elif error is not None:
        status = 200  # Alignak reports bad content with HTTP 200 and _status ERR
    issues = error.reasons if isinstance(error, EngineRefused) else [message]
    return json_answer({"_status": "ERR", "_issues": issues}, status=status or 500, headers=headers)


def _routes() -> tuple[Route, ...]:
    routes: list[Route] = []
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        for path in (f"{prefix}/host", f"{prefix}/host/{{host_name}}"):
            routes += [Route(method, path, host_view) for method in ("GET", "PATCH", "POST", "PUT", "DELETE")]
        for path, view in ((f"{prefix}/command", command_view), (f"{prefix}/event", event_view)):
            routes += [Route(method, path, view) for method in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    routes += [Route(method, "/ws/login", login_view) for method in ("GET", "POST")]
    routes += [Route(method, "/ws/logout", logout_view) for method in ("GET", "POST")]
    routes += [Route("GET", path, api_view) for path in ("/ws", "/ws/", "/ws/index", "/ws/api")]
    routes += [Route("GET", "/ws/api_full", api_full_view), Route("GET", "/ws/are_you_alive", alive_view)]
    return tuple(routes)


def _claims(path: str) -> bool:
    return path in ("/host", "/command", "/event", "/ws") or path.startswith(("/host/", "/ws/"))


# -- OpenAPI -------------------------------------------------------------------------------------------------------

_STATE = {"type": "string", "description": "host: up, down, unreachable; service: ok, warning, critical, unknown, "
                                           "unreachable (any letter case)"}
_LIVESTATE = {"type": "object", "properties": {
    "state": _STATE, "output": {"type": "string"}, "long_output": {"type": "string"},
    "perf_data": {"type": "string"}, "timestamp": {"type": ["integer", "number", "string"],
                                                   "description": "unix seconds, 1970 to 2100; default: now"}}}
_FLAGS = {"active_checks_enabled": {"type": "boolean", "description": "anything but a JSON boolean is ignored"},
          "passive_checks_enabled": {"type": "boolean", "description": "anything but a JSON boolean is ignored"}}
_VARIABLES = {"type": "object", "description": "custom variables the object already defines (name without the "
                                              "leading underscore); a list or an object is stored as its JSON text"}
_SERVICE = {"type": "object", "properties": {
    "name": {"type": "string"}, "livestate": {"anyOf": [_LIVESTATE, {"type": "array", "items": _LIVESTATE}]},
    "variables": _VARIABLES, **_FLAGS}}
_HOST_DOCUMENT = {
    "type": "object",
    "description": "As alignak-module-ws: the valid part is applied, what was not is listed in _issues "
                   "(then _status ERR); _result names what was sent.",
    "properties": {
        "name": {"type": "string", "description": "wins over the URL's name"},
        "livestate": {"anyOf": [_LIVESTATE, {"type": "array", "items": _LIVESTATE}]},
        "variables": _VARIABLES, **_FLAGS,
        "services": {"anyOf": [{"type": "array", "items": _SERVICE},
                               {"type": "object", "additionalProperties": _SERVICE}]},
        "template": {"description": "passed over: the engine cannot create hosts at run time"}}}
_ALIGNAK_ERRORS = (400, 401, 403, 413, 415, 429, 503)
_MEANINGS = {400: "malformed JSON or an empty body", 415: "a body that is not application/json"}
_ALIGNAK = ["alignak"]


def _alignak_body(schema: Schema) -> Schema:
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _alignak_paths(prefix: str) -> dict[str, Schema]:
    label = prefix.strip("/") or "root"
    name = {"name": "host_name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    answer = json_body(ref("AlignakAnswer"), "_status OK, or ERR with _issues / _error (Alignak reports bad content "
                                          "with HTTP 200)")
    failures = errors(_ALIGNAK_ERRORS, "AlignakError", _MEANINGS)
    read_failures = errors((401, 429), "AlignakError", _MEANINGS)

    def operation(verb: str, what: str, summary: str, body: Schema | None = None,
                  extra: Schema | None = None) -> Schema:
        refusals = failures if body is not None else read_failures
        found: Schema = {"operationId": f"{verb}_{what}_{label}", "tags": _ALIGNAK, "summary": summary,
                         "security": SECURE, "responses": {"200": answer, **refusals}}
        if body is not None:
            found["requestBody"] = _alignak_body(body)
        found.update(extra or {})
        return found

    def host(with_name: bool) -> Schema:
        what = "host_named" if with_name else "host"
        query = [] if with_name else [{"name": "name", "in": "query", "required": False,
                                       "schema": {"type": "string"}}]
        refused = "You must only GET, PATCH or POST on this endpoint (200, _status ERR)"
        return {
            "patch": operation("patch", what, "An Alignak WS host document: livestate, variables, check flags, "
                                              "services", _HOST_DOCUMENT),
            "post": operation("post", what, "The same as PATCH", _HOST_DOCUMENT),
            "get": operation("get", what, "The host as the engine has it, in _result; changes nothing",
                             extra={"parameters": query} if query else None),
            "put": operation("put", what, refused, {}),
            "delete": operation("delete", what, refused),
        }

    command = {"type": "object", "properties": {
        "command": {"type": "string", "description": "any external command (any letter case)"},
        "host": {"type": "string"}, "service": {"type": "string"}, "user": {"type": "string"},
        "element": {"type": "string", "description": "host/service or host;service"},
        "parameters": {"type": ["string", "number"], "description": "the remaining arguments, ';'-separated"},
        "timestamp": {"type": ["integer", "string"], "description": "unix seconds, 1970 to 2100; default: now"}}}
    event = {"type": "object", "properties": {
        "host": {"type": "string"}, "comment": {"type": "string"},
        "author": {"type": "string", "description": "default: Alignak WS"},
        "service": {"description": "a service comment when given; empty: a host comment"},
        "timestamp": {"type": ["integer", "string"], "description": "unix seconds, 1970 to 2100; default: now"}}}

    def post_only(what: str, summary: str, body: Schema) -> Schema:
        refused = "You must only POST on this endpoint (200, _status ERR)"
        return {"post": operation("post", what, summary, body), "get": operation("get", what, refused),
                "put": operation("put", what, refused, {}), "patch": operation("patch", what, refused, {}),
                "delete": operation("delete", what, refused)}

    paths = {
        f"{prefix}/host": host(False),
        f"{prefix}/host/{{host_name}}": {"parameters": [name], **host(True)},
        f"{prefix}/command": post_only("command", "Any external command, under the same table and permissions "
                                                  "as op5's API", command),
        f"{prefix}/event": post_only("event", "A persistent comment on a host or a service", event),
    }
    if prefix == "/ws":
        login = {"type": "object", "properties": {"username": {"type": ["string", "null"]},
                                                  "password": {"type": ["string", "null"]}}}
        public = {"200": answer, **errors((400, 415, 429), "AlignakError", _MEANINGS)}
        listing = json_body({"type": "array", "items": {"type": "string"}}, "the endpoints")
        listed: dict[str, Schema] = {"200": listing, **read_failures}
        full: dict[str, Schema] = {"200": json_body({"type": "object"}, "the endpoints"), **read_failures}
        alive: dict[str, Schema] = {"200": json_body({"type": "string"}, "Yes I am :)"), **read_failures}
        paths.update({
            "/ws/login": {
                "post": {"operationId": "login_ws", "tags": _ALIGNAK, "requestBody": _alignak_body(login),
                         "summary": "A session: _result [token] and the session cookie; Access denied. in _issues",
                         "responses": public},
                "get": {"operationId": "get_login_ws", "tags": _ALIGNAK,
                        "summary": "You must only POST on this endpoint (200, _status ERR)",
                        "responses": {"200": answer}}},
            "/ws/logout": {
                "get": {"operationId": "logout_ws", "tags": _ALIGNAK, "summary": "Ends the session of the cookie",
                        "responses": {"200": answer}},
                "post": {"operationId": "post_logout_ws", "tags": _ALIGNAK, "summary": "The same as GET",
                         "responses": {"200": answer}}},
            **{path: {"get": {"operationId": f"{path.strip('/').replace('/', '_') or 'ws'}_list", "tags": _ALIGNAK,
                              "summary": "The endpoint names", "security": SECURE,
                              "responses": listed}}
               for path in ("/ws", "/ws/index", "/ws/api")},
            "/ws/api_full": {"get": {"operationId": "api_full_ws", "tags": _ALIGNAK, "security": SECURE,
                                     "summary": "The endpoints, each with its doc and arguments",
                                     "responses": full}},
            "/ws/are_you_alive": {"get": {"operationId": "are_you_alive_ws", "tags": _ALIGNAK, "security": SECURE,
                                          "summary": "Yes I am :)",
                                          "responses": alive}},
        })
    return paths


def openapi_part(engine: EngineKind) -> ApiDescription:
    paths: dict[str, Any] = {}
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        paths.update(_alignak_paths(prefix))
    strings = {"type": "array", "items": {"type": "string"}}
    schemas = {
        "AlignakAnswer": {"type": "object", "required": ["_status"], "properties": {
            "_status": {"enum": ["OK", "ERR"]},
            "_result": {"anyOf": [{"type": "array"}, {"type": "string"}],
                        "description": "lines (host documents, events), the host (GET /host), the token (login), "
                                       "or a text (logout, Missing targeted element.)"},
            "_issues": strings, "_error": {"type": "string"}, "_command": {"type": "string"},
            "_feedback": {"type": "object"}}},
        "AlignakError": {"type": "object", "required": ["_status", "_issues"], "properties": {
            "_status": {"const": "ERR"}, "_issues": strings}},
    }
    return ApiDescription(paths, schemas, [{"name": "alignak", "description": "Alignak WS: problems with the "
                                            "content are answered with HTTP 200 and _status ERR, as Alignak does"}])


DIALECT = Dialect(name="alignak", routes=_routes(), render_error=render_error, claims=_claims, openapi=openapi_part,
                  error_schema="AlignakError",
                  internal_error=orjson.dumps({"_status": "ERR", "_issues": ["internal error: see the bridge's log"]}))
