"""``GET /api/openapi.json``: an OpenAPI 3.1 description generated from the command table (no auth, no secrets).

It says what the server does, and a schemathesis run in the tests holds it to that: a value the schema forbids is
refused (``""`` for a required parameter, a ``;`` in a name, a state out of range …), every status an operation
answers is listed, and each path lists exactly the methods its 405 answers name in ``Allow``. What no schema can
say is left to the descriptions: end_time after start_time, the range of a time given as text, objects the engine
does not have.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge import __version__
from bridge.appkeys import CONFIG
from bridge.command_table import COMMANDS, ArgType, CommandSpec
from bridge.commands import _NAGIOS_CUTS_AT_SEMICOLON, defaults, parameters
from bridge.jsonio import json_answer
from bridge.values import MAX_OUTPUT_CHARS, MAX_TIMESTAMP, EngineKind

Schema = dict[str, Any]


def _string_form(pattern: str) -> Schema:
    """A number written as text, as the server takes it: surrounding white space is stripped."""
    return {"type": "string", "pattern": rf"^\s*(?:{pattern})\s*$"}


def _ci(word: str) -> str:
    """``word`` in any letter case, as a pattern (JSON Schema patterns have no case-insensitive flag)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def _counting(low: int | None, high: int | None, text: str, description: str = "") -> Schema:
    """A whole number from ``low`` to ``high``, as a JSON integer or as text matching ``text``."""
    bounds = {key: value for key, value in (("minimum", low), ("maximum", high)) if value is not None}
    schema: Schema = {"anyOf": [{"type": "integer", **bounds}, _string_form(text)]}
    return {**schema, "description": description} if description else schema


_ZERO = r"-0+"  # "-0" is 0
_WORDS = "|".join(_ci(w) for w in ("true", "false", "yes", "no", "on", "off"))
_SCHEMAS: dict[ArgType, Schema] = {
    ArgType.INT: _counting(None, None, r"[+-]?\d+"),
    ArgType.ULONG: _counting(0, 2**63 - 1, rf"\+?\d+|{_ZERO}"),
    ArgType.SERVICE_STATE: _counting(0, 3, rf"\+?0*[0-3]|{_ZERO}", "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"),
    ArgType.HOST_STATE: _counting(0, 2, rf"\+?0*[0-2]|{_ZERO}", "0 UP, 1 DOWN, 2 UNREACHABLE"),
    ArgType.STICKY: {"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 2},
                               _string_form(rf"\+?0*[0-2]|{_ZERO}|{_ci('true')}|{_ci('false')}")],
                     "description": "0, 1 or 2 (2 = sticky; true = 2)"},
    ArgType.BOOL: {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, _string_form(f"1|0|{_WORDS}")],
                   "description": "true/false, 1/0, \"yes\"/\"no\", \"on\"/\"off\""},
    ArgType.TIMESTAMP: {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP},
                                  {"type": "string", "minLength": 1}],
                        "description": "unix seconds, ISO 8601 (no offset: local time) or +30m / +2h / +1d; "
                                       "from 1970 to 2100"},
    ArgType.OUTPUT: {"type": ["string", "number"], "maxLength": MAX_OUTPUT_CHARS, "pattern": r"^[^\x00]*$",
                     "description": "short|perfdata, then long output after a newline"},
}
_NAME = {"type": ["string", "number"], "minLength": 1, "pattern": r"^[^;\r\n\x00]*$"}
_FREE_TEXT = {"type": ["string", "number"], "minLength": 1, "pattern": r"^[^\r\n\x00]*$",
              "description": "may contain ';', not a line break"}


def _param_schema(spec: CommandSpec, kind: ArgType, last: bool, engine: EngineKind) -> Schema:
    if kind in _SCHEMAS:
        return dict(_SCHEMAS[kind])
    if kind is ArgType.STR and last and not (engine is EngineKind.NAGIOS and spec.name in _NAGIOS_CUTS_AT_SEMICOLON):
        return dict(_FREE_TEXT)
    return dict(_NAME)


def _request_schema(spec: CommandSpec, engine: EngineKind) -> Schema:
    """The body of ``POST /api/command/<COMMAND>``. A parameter that is not required may also be null or ``""``
    (both mean "not given": the default applies)."""
    described = defaults(spec)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in parameters(spec):
        schema = _param_schema(spec, param.type, param.last, engine)
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


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


_RETRY = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": "Basic realm", "schema": {"type": "string"}}}


def _errors(codes: tuple[int, ...], schema: str, *, alignak: bool = False) -> dict[str, Schema]:
    meanings = {400: "bad input (names the parameter)" if not alignak else "malformed JSON",
                401: "missing or wrong credentials" + ("" if alignak else ", or (op5) no right to this command"),
                403: "no right to this command or object", 404: "no such command on this engine",
                413: "body too large", 415: "Content-Type is not application/json",
                429: "too many failed logins (or logins waiting for a password check)",
                503: "neither the engine's pipe nor the spool could take it: nothing was written"}
    answers: dict[str, Schema] = {}
    for code in codes:
        answer = _json(_ref(schema), meanings[code])
        if code == 401:
            answer["headers"] = _CHALLENGE
        elif code in (429, 503):
            answer["headers"] = _RETRY
        answers[str(code)] = answer
    return answers


_OP5_ERRORS = (400, 401, 413, 429, 503)
_SECURE: list[dict[str, list[str]]] = [{"basic": []}]
_ALIGNAK = ["alignak"]


def _op5_command(spec: CommandSpec, engine: EngineKind) -> dict[str, Schema]:
    schema = _request_schema(spec, engine)
    ok = _json(_ref("Submitted"), "written to the engine's pipe or the spool")
    post = {"operationId": spec.name.lower(), "tags": ["op5"], "summary": f"{spec.name} (target: {spec.target.value})",
            "security": _SECURE,
            "requestBody": {"required": bool(schema["required"]), "content": {
                "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}}},
            "responses": {"200": ok, **_errors(_OP5_ERRORS, "Error")}}
    get = {"operationId": f"{spec.name.lower()}_template", "tags": ["op5"],
           "summary": f"{spec.name}: its parameters, types, which are required, and the defaults",
           "security": _SECURE,
           "responses": {"200": _json(_ref("Template"), "the parameter template"),
                         **_errors((401, 429), "Error")}}
    return {"get": get, "post": post}


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


def _alignak_body(schema: Schema) -> Schema:
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _alignak_paths(prefix: str) -> dict[str, Schema]:
    label = prefix.strip("/") or "root"
    name = {"name": "host_name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    answer = _json(_ref("AlignakAnswer"), "_status OK, or ERR with _issues / _error (Alignak reports bad content "
                                          "with HTTP 200)")
    errors = _errors(_ALIGNAK_ERRORS, "AlignakError", alignak=True)

    def update(operation: str, with_name: bool) -> Schema:
        return {"operationId": f"{operation}_host{'_named' if with_name else ''}_{label}", "tags": _ALIGNAK,
                "summary": "An Alignak WS host document: livestate, variables, check flags, services",
                "security": _SECURE, "requestBody": _alignak_body(_HOST_DOCUMENT),
                "responses": {"200": answer, **errors}}

    named = {"patch": update("patch", True), "post": update("post", True),
             "get": {"operationId": f"get_host_{label}", "tags": _ALIGNAK, "security": _SECURE,
                     "summary": "The host's _feedback with every service; changes nothing",
                     "responses": {"200": answer, **_errors((401, 429), "AlignakError", alignak=True)}}}
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
            "operationId": f"command_{label}", "tags": _ALIGNAK, "security": _SECURE,
            "summary": "Any external command, under the same table and permissions as op5's API",
            "requestBody": _alignak_body(command), "responses": {"200": answer, **errors}}},
        f"{prefix}/event": {"post": {
            "operationId": f"event_{label}", "tags": _ALIGNAK, "security": _SECURE,
            "summary": "A persistent comment on a host or a service", "requestBody": _alignak_body(event),
            "responses": {"200": answer, **errors}}},
    }


_STALE = "|".join(["1", "0", ""] + [_ci(w) for w in ("true", "yes", "false", "no")])


def openapi_document(engine: EngineKind) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for spec in COMMANDS.values():
        if spec.naemon_only and engine is not EngineKind.NAEMON:
            continue
        paths[f"/api/command/{spec.name}"] = _op5_command(spec, engine)
    paths["/api/results"] = {"post": {
        "operationId": "submit_results", "tags": ["op5"], "summary": "Many check results, validated all or nothing",
        "security": _SECURE,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "array", "items": _ref("BatchResult")}}}},
        "responses": {"200": _json({"type": "object", "required": ["result", "accepted"], "properties": {
            "result": {"type": "string"}, "accepted": {"type": "integer"}}}, "all accepted"),
            **_errors(_OP5_ERRORS, "Error")}}}
    paths["/api/command"] = {"get": {
        "operationId": "list_commands", "tags": ["op5"], "security": _SECURE,
        "summary": "The commands this user may run",
        "responses": {"200": _json({"type": "object", "required": ["commands"], "properties": {"commands": {
            "type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "target": {"type": "string"}}}}}}, "command names and targets"),
            **_errors((401, 429), "Error")}}}
    paths["/api/freshness"] = {"get": {
        "operationId": "freshness", "tags": ["op5"], "security": _SECURE,
        "summary": "When each object last reported, against its threshold (only what the user's grants cover)",
        "parameters": [
            {"name": "stale", "in": "query", "required": False, "schema": {"type": "string",
                                                                           "pattern": f"^(?:{_STALE})$"}},
            {"name": "host", "in": "query", "required": False, "schema": {"type": "string"}}],
        "responses": {"200": _json(_ref("Freshness"), "objects and counts"), **_errors((400, 401, 429), "Error")}}}
    paths["/api/openapi.json"] = {"get": {"operationId": "openapi", "summary": "This document, no auth",
                                          "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}}
    health = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "degraded"]}}}
    paths["/health"] = {"get": {"operationId": "health", "summary": "Engine and spool state, no auth",
                                "responses": {"200": _json(health, "ok"), "503": _json(health, "degraded")}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "summary": "Prometheus exposition, no auth",
                                 "responses": {"200": {"description": "metrics", "content": {
                                     "text/plain": {"schema": {"type": "string"}}}}}}}
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        paths.update(_alignak_paths(prefix))
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "naemon-bridge", "version": __version__,
                 "description": "Passive check results and external commands into Naemon or Nagios "
                                f"(configured engine: {engine.value})."},
        "tags": [{"name": "op5", "description": "op5 Monitor's command API"},
                 {"name": "alignak", "description": "Alignak WS: problems with the content are answered with "
                                                    "HTTP 200 and _status ERR, as Alignak does"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
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
                    "host_name": _NAME,
                    "service_description": {"anyOf": [_NAME, {"type": "null"}],
                                            "description": "absent/null: a host"},
                    "status_code": _counting(0, 3, rf"\+?0*[0-3]|{_ZERO}",
                                             "a service state 0-3, or for a host 0-2"),
                    "plugin_output": {"anyOf": [_SCHEMAS[ArgType.OUTPUT], {"type": "null"}]},
                    "timestamp": {"anyOf": [_SCHEMAS[ArgType.TIMESTAMP], {"type": "null"}]}},
                    "additionalProperties": False},
                "Freshness": {"type": "object", "required": ["objects", "counts"], "properties": {
                    "objects": {"type": "array", "items": {"type": "object"}},
                    "counts": {"type": "object", "properties": {"fresh": {"type": "integer"},
                                                                "stale": {"type": "integer"}}}}},
                "AlignakAnswer": {"type": "object", "required": ["_status"], "properties": {
                    "_status": {"enum": ["OK", "ERR"]}, "_result": strings, "_issues": strings,
                    "_error": {"type": "string"}, "_command": {"type": "string"},
                    "_feedback": {"type": "object"}}},
                "AlignakError": {"type": "object", "required": ["_status", "_issues"], "properties": {
                    "_status": {"const": "ERR"}, "_issues": strings}},
            },
        },
    }


async def openapi_view(request: web.Request) -> web.Response:
    return json_answer(openapi_document(request.app[CONFIG].current.engine.kind))
