"""Alignak WS style: ``PATCH /host/<host_name>`` (alignak-ws.md). Maps HTTP to ``bridge.core.alignak`` and back;
its routes, error shape and OpenAPI part are ``DIALECT``.

Alignak answers problems with ``_status: ERR`` and HTTP 200; only transport problems get other codes (malformed
JSON 400, content type 415, auth 401).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from bridge.core.alignak import HostUpdate, event_notes, host_feedback, plan_command, plan_event, plan_host_update
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
from bridge.core.freshness import freshness_feedback
from bridge.core.values import EngineKind
from bridge.http.auth import authenticate
from bridge.http.bodies import read_body
from bridge.http.dialects import ApiDescription, Dialect, Route
from bridge.http.jsonio import DocumentRefused, json_answer, loads
from bridge.http.keys import CLOCK, CONFIG, ENGINE_FILES, FRESHNESS, METRICS
from bridge.http.openapi import SECURE, Schema, errors, json_body, ref
from bridge.http.submission import admit, submit_commands


async def host_view(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    document = await _document(request)
    if not document:
        return json_answer({"_status": "ERR", "_error": "You must send parameters on this endpoint."})
    config = request.app[CONFIG].current
    files = request.app[ENGINE_FILES]
    update = plan_host_update(document, request.match_info.get("host_name"), known=await files.objects(),
                              status=await files.status(), now=int(request.app[CLOCK]()),
                              ignore_unknown_service=config.alignak.ignore_unknown_service)
    if update.issues:
        request.app[METRICS].refused.labels("invalid").inc()
        return json_answer({"_status": "ERR", "_result": [], "_issues": update.issues})
    await admit(request.app, principal, update.commands)
    await submit_commands(request.app, update.commands)
    result = [f"{update.host_name} is alive :)"] + [command_text(c) for c in update.commands] + update.notes
    _add_freshness(request.app, update)
    return json_answer({"_status": "OK", "_result": result, "_feedback": update.feedback})


async def host_get_view(request: web.Request) -> web.Response:
    """``GET /host/<name>``: the host's ``_feedback``; changes nothing."""
    await authenticate(request)
    files = request.app[ENGINE_FILES]
    update = host_feedback(request.match_info["host_name"], known=await files.objects(), status=await files.status())
    if update.issues:
        return json_answer({"_status": "ERR", "_issues": update.issues})
    _add_freshness(request.app, update)
    return json_answer({"_status": "OK", "_feedback": update.feedback})


def _add_freshness(app: web.Application, update: HostUpdate) -> None:
    """The freshness fields of ``_feedback``, as the bridge's table has them once the update is applied."""
    table, config = app[FRESHNESS], app[CONFIG].current.freshness
    update.feedback.update(freshness_feedback(table.entry(update.host_name, None), config.stale_host_state))
    services = update.feedback.get("services")
    if isinstance(services, dict):
        for key, name in update.service_keys.items():
            services[key].update(freshness_feedback(table.entry(update.host_name, name),
                                                    config.stale_service_state))


async def command_view(request: web.Request) -> web.Response:
    """``POST /command``: any external command, under the same table and permissions as op5's API."""
    principal = await authenticate(request)
    document = await _document(request)
    config = request.app[CONFIG].current
    try:
        command = plan_command(document, engine=config.engine.kind, now=int(request.app[CLOCK]()),
                               author=principal.name)
    except (InvalidInput, UnknownCommand) as exc:
        request.app[METRICS].refuse(exc)
        return json_answer({"_status": "ERR", "_error": str(exc)})
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    return json_answer({"_status": "OK", "_command": command_text(command)})


async def event_view(request: web.Request) -> web.Response:
    """``POST /event``: a comment on a host or service (ADD_HOST_COMMENT / ADD_SVC_COMMENT)."""
    principal = await authenticate(request)
    document = await _document(request)
    try:
        command = plan_event(document, now=int(request.app[CLOCK]()), author=principal.name)
    except InvalidInput as exc:
        request.app[METRICS].refuse(exc)
        return json_answer({"_status": "ERR", "_error": str(exc)})
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    return json_answer({"_status": "OK", "_result": [command_text(command), *event_notes(document)]})


async def _document(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise BadRequestBody(415, f"Content-Type must be application/json, not '{request.content_type}'")
    body = await read_body(request)
    if not body.strip():
        return {}
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
            routes += [Route("PATCH", path, host_view), Route("POST", path, host_view)]
        routes += [Route("GET", f"{prefix}/host/{{host_name}}", host_get_view),
                   Route("POST", f"{prefix}/command", command_view),
                   Route("POST", f"{prefix}/event", event_view)]
    return tuple(routes)


def _claims(path: str) -> bool:
    return path in ("/host", "/command", "/event") or path.startswith(("/host/", "/ws/"))


# -- OpenAPI -------------------------------------------------------------------------------------------------------

_STATE = {"type": "string", "description": "host: up, down, unreachable; service: ok, warning, critical, unknown, "
                                           "unreachable (any letter case)"}
_LIVESTATE = {"type": "object", "properties": {
    "state": _STATE, "output": {"type": "string"}, "long_output": {"type": "string"},
    "perf_data": {"type": "string"}, "timestamp": {"type": ["integer", "number", "string"],
                                                   "description": "unix seconds, 1970 to 2100; default: now"}}}
_FLAGS = {"active_checks_enabled": {"type": "boolean"}, "passive_checks_enabled": {"type": "boolean"}}
_VARIABLES = {"type": "object", "additionalProperties": {"type": ["string", "number"]},
              "description": "custom variables the object already defines (without the leading underscore)"}
_SERVICE = {"type": "object", "properties": {
    "name": {"type": "string"}, "livestate": {"anyOf": [_LIVESTATE, {"type": "array", "items": _LIVESTATE}]},
    "variables": _VARIABLES, **_FLAGS}}
_HOST_DOCUMENT = {
    "type": "object",
    "description": "Any problem refuses the whole document (200, _status ERR with _issues) and nothing is "
                   "written; fields the bridge does not act on are named in _result.",
    "properties": {
        "name": {"type": "string", "description": "wins over the URL's name"},
        "livestate": {"anyOf": [_LIVESTATE, {"type": "array", "items": _LIVESTATE}]},
        "variables": _VARIABLES, **_FLAGS,
        "services": {"anyOf": [{"type": "object", "additionalProperties": _SERVICE},
                               {"type": "array", "items": _SERVICE}]},
        "template": {"description": "ignored: the engine cannot create hosts at run time"}}}
_ALIGNAK_ERRORS = (400, 401, 403, 413, 415, 429, 503)
_MEANINGS = {400: "malformed JSON"}  # bad content is answered 200 with _status ERR
_ALIGNAK = ["alignak"]


def _alignak_body(schema: Schema) -> Schema:
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _alignak_paths(prefix: str) -> dict[str, Schema]:
    label = prefix.strip("/") or "root"
    name = {"name": "host_name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    answer = json_body(ref("AlignakAnswer"), "_status OK, or ERR with _issues / _error (Alignak reports bad content "
                                          "with HTTP 200)")
    failures = errors(_ALIGNAK_ERRORS, "AlignakError", _MEANINGS)

    def update(operation: str, with_name: bool) -> Schema:
        return {"operationId": f"{operation}_host{'_named' if with_name else ''}_{label}", "tags": _ALIGNAK,
                "summary": "An Alignak WS host document: livestate, variables, check flags, services",
                "security": SECURE, "requestBody": _alignak_body(_HOST_DOCUMENT),
                "responses": {"200": answer, **failures}}

    named = {"patch": update("patch", True), "post": update("post", True),
             "get": {"operationId": f"get_host_{label}", "tags": _ALIGNAK, "security": SECURE,
                     "summary": "The host's _feedback with every service; changes nothing",
                     "responses": {"200": answer, **errors((401, 429), "AlignakError", _MEANINGS)}}}
    command = {"type": "object", "properties": {
        "command": {"type": "string", "description": "any external command (any letter case)"},
        "host": {"type": "string"}, "service": {"type": "string"}, "user": {"type": "string"},
        "element": {"type": "string", "description": "host/service or host;service"},
        "parameters": {"type": ["string", "number"], "description": "the remaining arguments, ';'-separated"},
        "timestamp": {"type": ["integer", "string"], "description": "unix seconds, 1970 to 2100; default: now"}}}
    event = {"type": "object", "properties": {
        "host": {"type": "string"}, "comment": {"type": "string"}, "author": {"type": "string"},
        "service": {"description": "a service comment when given; empty (\"\", 0, false, null): a host comment, "
                                   "and _result says so"},
        "timestamp": {"type": ["integer", "string"], "description": "unix seconds, 1970 to 2100; default: now"}}}
    return {
        f"{prefix}/host": {method: update(method, False) for method in ("patch", "post")},
        f"{prefix}/host/{{host_name}}": {"parameters": [name], **named},
        f"{prefix}/command": {"post": {
            "operationId": f"command_{label}", "tags": _ALIGNAK, "security": SECURE,
            "summary": "Any external command, under the same table and permissions as op5's API",
            "requestBody": _alignak_body(command), "responses": {"200": answer, **failures}}},
        f"{prefix}/event": {"post": {
            "operationId": f"event_{label}", "tags": _ALIGNAK, "security": SECURE,
            "summary": "A persistent comment on a host or a service", "requestBody": _alignak_body(event),
            "responses": {"200": answer, **failures}}},
    }



def openapi_part(engine: EngineKind) -> ApiDescription:
    paths: dict[str, Any] = {}
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        paths.update(_alignak_paths(prefix))
    strings = {"type": "array", "items": {"type": "string"}}
    schemas = {
        "AlignakAnswer": {"type": "object", "required": ["_status"], "properties": {
            "_status": {"enum": ["OK", "ERR"]}, "_result": strings, "_issues": strings,
            "_error": {"type": "string"}, "_command": {"type": "string"}, "_feedback": {"type": "object"}}},
        "AlignakError": {"type": "object", "required": ["_status", "_issues"], "properties": {
            "_status": {"const": "ERR"}, "_issues": strings}},
    }
    return ApiDescription(paths, schemas, [{"name": "alignak", "description": "Alignak WS: problems with the "
                                            "content are answered with HTTP 200 and _status ERR, as Alignak does"}])


DIALECT = Dialect(name="alignak", routes=_routes(), render_error=render_error, claims=_claims, openapi=openapi_part,
                  error_schema="AlignakError",
                  internal_error=orjson.dumps({"_status": "ERR", "_issues": ["internal error: see the bridge's log"]}))
