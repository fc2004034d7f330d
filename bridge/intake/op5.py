"""OP5 Monitor style (op5-command-api.md): ``POST /api/command/<COMMAND>``, its discovery endpoints and the batch
endpoint ``POST /api/results``. Maps HTTP to the core and back; its routes, error shape and OpenAPI part are
``DIALECT``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

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
from bridge.http.dialects import Dialect, Route
from bridge.http.jsonio import json_answer, loads
from bridge.http.keys import CLOCK, CONFIG
from bridge.http.openapi import ARG_SCHEMAS, LOOSE_INT
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
    items = _json(await request.read())
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


async def _parameters(request: web.Request) -> Mapping[str, object]:
    """JSON or form parameters; the query string (``?format=json``) is accepted and ignored."""
    body = await request.read()
    if not body.strip():
        return {}
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data") \
            and not body.lstrip().startswith(b"{"):  # curl -d '{…}' without a JSON content type still sends JSON
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}
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

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _request_schema(spec: CommandSpec) -> dict[str, Any]:
    template = command_template(spec)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in template["parameters"]:  # type: ignore[attr-defined]
        schema = dict(ARG_SCHEMAS.get(ArgType(param["type"]), {"type": "string"}))
        if "default" in param:
            schema["description"] = (schema.get("description", "") + f" (default: {param['default']})").strip()
        properties[param["name"]] = schema
        if param["required"]:
            required.append(param["name"])
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def openapi_part(engine: EngineKind) -> tuple[dict[str, Any], dict[str, Any]]:
    errors = {str(code): _ERROR for code in (400, 401, 404, 429, 503)}
    paths: dict[str, Any] = {}
    for spec in COMMANDS.values():
        if spec.naemon_only and engine is not EngineKind.NAEMON:
            continue
        schema = _request_schema(spec)
        paths[f"/api/command/{spec.name}"] = {"post": {
            "operationId": spec.name.lower(),
            "summary": f"{spec.name} (target: {spec.target.value})",
            "security": [{"basic": []}],
            "requestBody": {"required": bool(schema["required"]), "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema}}},
            "responses": {"200": {"description": "written to the engine's pipe or the spool", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Submitted"}}}}, **errors},
        }}
    paths["/api/results"] = {"post": {
        "operationId": "submit_results", "summary": "Many check results, validated all or nothing",
        "security": [{"basic": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "items": {"$ref": "#/components/schemas/BatchResult"}}}}},
        "responses": {"200": {"description": "all accepted", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"result": {"type": "string"}, "accepted": {"type": "integer"}}}}}},
            **errors}}}
    paths["/api/command"] = {"get": {"operationId": "list_commands", "security": [{"basic": []}],
                                     "summary": "The commands this user may run",
                                     "responses": {"200": {"description": "command names and targets"}}}}
    schemas = {
        "Submitted": {"type": "object", "properties": {"result": {"type": "string"}}},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}, "full_error": {"type": "string"}}},
        "BatchResult": {"type": "object", "required": ["host_name", "status_code"], "properties": {
            "host_name": {"type": "string"},
            "service_description": {"type": ["string", "null"], "description": "absent/null: a host"},
            "status_code": LOOSE_INT, "plugin_output": {"type": "string"},
            "timestamp": ARG_SCHEMAS[ArgType.TIMESTAMP]}},
    }
    return paths, schemas


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
    worker_routes=(_COMMAND, _RESULTS),
)
