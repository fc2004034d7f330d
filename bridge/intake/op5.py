"""OP5 Monitor style (op5-command-api.md): ``POST /api/command/<COMMAND>``, its discovery endpoints and the batch
endpoint ``POST /api/results``. Maps HTTP to the core and back; its routes, error shape and OpenAPI part are
``DIALECT``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import hdrs, web

from bridge.core import permissions
from bridge.core.command_table import COMMANDS, ArgType, CommandSpec
from bridge.core.commands import command_from_params, defaults, find_command, parameters, parse_timestamp
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
    UnknownObject,
)
from bridge.core.values import Command, EngineKind
from bridge.http.auth import authenticate
from bridge.http.bodies import FORM_TYPES, form_fields, read_body
from bridge.http.dialects import ApiDescription, Dialect, Route
from bridge.http.jsonio import DocumentRefused, json_answer, loads
from bridge.http.keys import CLOCK, CONFIG
from bridge.http.openapi import (
    ARG_SCHEMAS,
    NAME,
    SECURE,
    ZERO,
    Schema,
    counting,
    errors,
    json_body,
    param_schema,
    ref,
)
from bridge.http.submission import admit, submit_commands, unknown_objects

REALM = 'Basic realm="naemon-bridge"'
MAX_BATCH_PROBLEMS = 20  # problems listed in one answer; the count says how many there were


async def command_view(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    engine = request.app[CONFIG].current.engine.kind
    spec = find_command(request.match_info["command"].upper(), engine)
    permissions.check_command(principal.name, principal.grants, spec)
    params = await _parameters(request)
    command = command_from_params(spec, params, now=int(request.app[CLOCK]()), author=principal.name)
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    return json_answer({"result": f"Successfully submitted {spec.name}"})


async def results_view(request: web.Request) -> web.Response:
    """``POST /api/results``: a JSON list of check results with op5's keys, validated all or nothing."""
    principal = await authenticate(request)
    items = _json(await read_body(request))
    if not isinstance(items, list):
        raise BadRequestBody(400, f"the body must be a JSON list of results, not {type(items).__name__}")
    now = int(request.app[CLOCK]())
    commands: list[Command] = []
    positions: list[int] = []  # each command's index in the request
    problems: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            commands.append(_batch_result(index, item, now, principal.name))
            positions.append(index)
        except InvalidInput as exc:
            problems[index] = _batch_problem(index, exc)
    # Every unknown object too, with its index, in the same answer (after the permissions, as admit does).
    unknown = await unknown_objects(request.app, principal, commands)
    for position, problem in unknown.items():
        problems[positions[position]] = _batch_problem(positions[position], problem)
    if problems:
        listed = "; ".join(problems[index] for index in sorted(problems)[:MAX_BATCH_PROBLEMS])
        more = f" (and {len(problems) - MAX_BATCH_PROBLEMS} more)" if len(problems) > MAX_BATCH_PROBLEMS else ""
        error = UnknownObject if len(unknown) == len(problems) else InvalidInput
        raise error("", f"{len(problems)} of {len(items)} results are invalid, none was submitted: {listed}{more}")
    await submit_commands(request.app, commands)
    return json_answer({"result": f"Successfully submitted {len(commands)} results",
                              "accepted": len(commands)})


def _batch_problem(index: int, exc: InvalidInput) -> str:
    return f"results[{index}].{exc.field}: {exc.message}" if exc.field else str(exc)


def _batch_result(index: int, item: object, now: int, author: str) -> Command:
    if not isinstance(item, dict):
        raise InvalidInput("", f"results[{index}] must be an object, not {type(item).__name__}")
    params = dict(item)
    stamp = parse_timestamp("timestamp", params.pop("timestamp"), now) if params.get("timestamp") is not None \
        else now
    params.pop("timestamp", None)
    if params.get("service_description") is None:
        params.pop("service_description", None)
        spec = COMMANDS["PROCESS_HOST_CHECK_RESULT"]
    else:
        spec = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"]
    return command_from_params(spec, params, now=stamp, author=author)


async def list_view(request: web.Request) -> web.Response:
    """``GET /api/command``: the commands this user may run on the configured engine."""
    principal = await authenticate(request)
    engine = request.app[CONFIG].current.engine.kind
    names = [spec for spec in COMMANDS.values()
             if principal.grants.may_run(spec) and (not spec.naemon_only or engine.value == "naemon")]
    return json_answer({"commands": [{"name": s.name, "target": s.target.value} for s in names]})


async def template_view(request: web.Request) -> web.Response:
    """``GET /api/command/<COMMAND>``: its parameters, types, which are required, and the defaults."""
    principal = await authenticate(request)
    spec = find_command(request.match_info["command"].upper(), request.app[CONFIG].current.engine.kind)
    return json_answer({**command_template(spec), "permitted": principal.grants.may_run(spec)})


def command_template(spec: CommandSpec) -> dict[str, object]:
    described = defaults(spec)
    return {
        "command": spec.name,
        "target": spec.target.value,
        "engines": ["naemon"] if spec.naemon_only else ["naemon", "nagios"],
        "parameters": [{"name": p.name, "type": p.type.value,
                        "required": not p.optional and p.name not in described,
                        **({"default": described[p.name]} if p.name in described else {})}
                       for p in parameters(spec)],
    }


def _json(body: bytes) -> object:
    try:
        return loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestBody(400, f"the body is not valid JSON: {exc}") from None
    except DocumentRefused as exc:
        raise BadRequestBody(400, f"the body's JSON is refused: {exc}") from None


async def _parameters(request: web.Request) -> Mapping[str, object]:
    """JSON or form parameters; the query string (``?format=json``) is accepted and ignored."""
    body = await read_body(request)
    if not body.strip():
        return {}
    if request.content_type in FORM_TYPES and not body.lstrip().startswith(b"{"):
        # (curl -d '{…}' without a JSON content type still sends JSON)
        return form_fields(request.headers.get(hdrs.CONTENT_TYPE, ""), body)
    data = _json(body)
    if not isinstance(data, dict):
        raise BadRequestBody(400, f"the body must be a JSON object of parameters, not {type(data).__name__}")
    return data


def render_error(status: int, message: str, error: BridgeError | None) -> web.Response:
    """op5's error body ``{"error", "full_error"}`` with the status codes op5 clients rely on."""
    headers: dict[str, str] = {}
    short = HTTPStatus(status).phrase if status else message
    if isinstance(error, UnknownObject):
        status, short = 400, "Unknown object"
    elif isinstance(error, InvalidInput):
        status, short = 400, f"Invalid parameter '{error.field}'" if error.field else "Invalid request"
    elif isinstance(error, BadRequestBody):
        status, short = error.status, "Invalid request body"
    elif isinstance(error, NotAuthenticated):
        status, short = 401, "Authentication failed"
        headers["WWW-Authenticate"] = REALM
    elif isinstance(error, NotPermitted):
        status, short = 401, "Permission denied"  # op5 uses 401, not 403, for missing command rights
    elif isinstance(error, Throttled):
        status, short = 429, "Too many failed logins"
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, UnknownCommand):
        status, short = 404, "Unknown command"
    elif isinstance(error, EngineRefused):
        status, short = 400, "Refused by the engine"
    elif isinstance(error, EngineUnavailable):
        status, short = 503, "Engine unavailable"
        headers["Retry-After"] = "5"
    return json_answer({"error": short, "full_error": message}, status=status or 500, headers=headers)


# -- OpenAPI -------------------------------------------------------------------------------------------------------

def _request_schema(spec: CommandSpec, engine: EngineKind) -> Schema:
    """The body of ``POST /api/command/<COMMAND>``. A parameter that is not required may also be null or ``""``
    (both mean "not given": the default applies)."""
    described = defaults(spec)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in parameters(spec):
        schema = param_schema(spec, param.type, param.last, engine)
        if not param.optional and param.name not in described:
            required.append(param.name)
        else:
            notes = schema.pop("description", "")
            if param.name in described:
                notes = (notes + f" (default: {described[param.name]})").strip()
            schema = {"anyOf": [schema, {"type": "null"}, {"const": ""}], **({"description": notes} if notes
                                                                              else {})}
        properties[param.name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_OP5_ERRORS = (400, 401, 413, 429, 503)
_MEANINGS = {401: "missing or wrong credentials, or no right to this command (op5 answers 401 for both)"}


def _op5_command(spec: CommandSpec, engine: EngineKind) -> dict[str, Schema]:
    schema = _request_schema(spec, engine)
    ok = json_body(ref("Submitted"), "written to the engine's pipe or the spool")
    post = {"operationId": spec.name.lower(), "tags": ["op5"], "summary": f"{spec.name} (target: {spec.target.value})",
            "security": SECURE,
            "requestBody": {"required": bool(schema["required"]), "content": {
                "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}}},
            "responses": {"200": ok, **errors(_OP5_ERRORS, "Error", _MEANINGS)}}
    get = {"operationId": f"{spec.name.lower()}_template", "tags": ["op5"],
           "summary": f"{spec.name}: its parameters, types, which are required, and the defaults",
           "security": SECURE,
           "responses": {"200": json_body(ref("Template"), "the parameter template"),
                         **errors((401, 429), "Error")}}
    return {"get": get, "post": post}



def openapi_part(engine: EngineKind) -> ApiDescription:
    paths: dict[str, Any] = {}
    for spec in COMMANDS.values():
        if spec.naemon_only and engine is not EngineKind.NAEMON:
            continue
        paths[f"/api/command/{spec.name}"] = _op5_command(spec, engine)
    paths["/api/results"] = {"post": {
        "operationId": "submit_results", "tags": ["op5"], "summary": "Many check results, validated all or nothing",
        "security": SECURE,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "items": ref("BatchResult")}}}},
        "responses": {"200": json_body({"type": "object", "required": ["result", "accepted"], "properties": {
            "result": {"type": "string"}, "accepted": {"type": "integer"}}}, "all accepted"),
            **errors(_OP5_ERRORS, "Error", _MEANINGS)}}}
    paths["/api/command"] = {"get": {
        "operationId": "list_commands", "tags": ["op5"], "security": SECURE,
        "summary": "The commands this user may run",
        "responses": {"200": json_body({"type": "object", "required": ["commands"], "properties": {"commands": {
            "type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "target": {"type": "string"}}}}}}, "command names and targets"),
            **errors((401, 429), "Error")}}}
    strings = {"type": "array", "items": {"type": "string"}}
    schemas = {
        "Submitted": {"type": "object", "required": ["result"], "properties": {"result": {"type": "string"}}},
        "Error": {"type": "object", "required": ["error", "full_error"], "properties": {
            "error": {"type": "string"}, "full_error": {"type": "string"}}},
        "Template": {"type": "object", "required": ["command", "parameters"], "properties": {
            "command": {"type": "string"}, "target": {"type": "string"}, "engines": strings,
            "permitted": {"type": "boolean"}, "parameters": {"type": "array", "items": {
                "type": "object", "required": ["name", "type", "required"], "properties": {
                    "name": {"type": "string"}, "type": {"type": "string"},
                    "required": {"type": "boolean"}, "default": {"type": "string"}}}}}},
        "BatchResult": {"type": "object", "required": ["host_name", "status_code"], "properties": {
            "host_name": NAME,
            "service_description": {"anyOf": [NAME, {"type": "null"}], "description": "absent/null: a host"},
            "status_code": counting(0, 3, rf"\+?0*[0-3]|{ZERO}", "a service state 0-3, or for a host 0-2"),
            "plugin_output": {"anyOf": [ARG_SCHEMAS[ArgType.OUTPUT], {"type": "null"}]},
            "timestamp": {"anyOf": [ARG_SCHEMAS[ArgType.TIMESTAMP], {"type": "null"}]}},
            "additionalProperties": False},
    }
    return ApiDescription(paths, schemas, [{"name": "op5", "description": "op5 Monitor's command API"}])


def _claims(path: str) -> bool:
    return path.startswith("/api/")


_COMMAND = Route("POST", "/api/command/{command}", command_view)
_RESULTS = Route("POST", "/api/results", results_view)

DIALECT = Dialect(
    name="op5",
    routes=(Route("GET", "/api/command", list_view), Route("GET", "/api/command/{command}", template_view),
            _COMMAND, _RESULTS),
    render_error=render_error,
    claims=_claims,
    openapi=openapi_part,
    error_schema="Error",
    internal_error=orjson.dumps({"error": "Internal Server Error",
                                 "full_error": "internal error: see the bridge's log"}),
    worker_routes=(_COMMAND, _RESULTS),
)
