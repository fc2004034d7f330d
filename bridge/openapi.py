"""``GET /api/openapi.json``: an OpenAPI 3.1 description generated from the command table (no auth, no secrets)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge import __version__
from bridge.api_op5 import command_template
from bridge.appkeys import CONFIG
from bridge.command_table import COMMANDS, ArgType, CommandSpec
from bridge.jsonio import json_answer
from bridge.values import EngineKind

_LOOSE_INT = {"type": ["integer", "string"], "pattern": r"^\s*[+-]?\d+\s*$"}
_SCHEMAS: dict[ArgType, dict[str, Any]] = {
    ArgType.INT: _LOOSE_INT,
    ArgType.ULONG: {**_LOOSE_INT, "minimum": 0},
    ArgType.SERVICE_STATE: {**_LOOSE_INT, "minimum": 0, "maximum": 3,
                            "description": "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"},
    ArgType.HOST_STATE: {**_LOOSE_INT, "minimum": 0, "maximum": 2, "description": "0 UP, 1 DOWN, 2 UNREACHABLE"},
    ArgType.STICKY: {"type": ["integer", "string", "boolean"], "description": "0, 1 or 2 (2 = sticky; true = 2)"},
    ArgType.BOOL: {"type": ["boolean", "integer", "string"], "description": "true/false, 1/0, \"true\"/\"false\""},
    ArgType.TIMESTAMP: {"type": ["integer", "string"],
                        "description": "unix seconds, ISO 8601 (no offset: local time) or +30m / +2h / +1d"},
    ArgType.OUTPUT: {"type": "string", "description": "short|perfdata, then long output after a newline"},
}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _request_schema(spec: CommandSpec) -> dict[str, Any]:
    template = command_template(spec)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in template["parameters"]:  # type: ignore[attr-defined]
        schema = dict(_SCHEMAS.get(ArgType(param["type"]), {"type": "string"}))
        if "default" in param:
            schema["description"] = (schema.get("description", "") + f" (default: {param['default']})").strip()
        properties[param["name"]] = schema
        if param["required"]:
            required.append(param["name"])
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def openapi_document(engine: EngineKind) -> dict[str, Any]:
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
    paths["/health"] = {"get": {"operationId": "health", "summary": "Engine and spool state, no auth",
                                "responses": {"200": {"description": "ok"}, "503": {"description": "degraded"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "naemon-bridge", "version": __version__,
                 "description": "Passive check results and external commands into Naemon or Nagios "
                                f"(configured engine: {engine.value})."},
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Submitted": {"type": "object", "properties": {"result": {"type": "string"}}},
                "Error": {"type": "object", "properties": {"error": {"type": "string"},
                                                           "full_error": {"type": "string"}}},
                "BatchResult": {"type": "object", "required": ["host_name", "status_code"], "properties": {
                    "host_name": {"type": "string"},
                    "service_description": {"type": ["string", "null"], "description": "absent/null: a host"},
                    "status_code": _LOOSE_INT, "plugin_output": {"type": "string"},
                    "timestamp": _SCHEMAS[ArgType.TIMESTAMP]}},
            },
        },
    }


async def openapi_view(request: web.Request) -> web.Response:
    return json_answer(openapi_document(request.app[CONFIG].current.engine.kind))
