"""``GET /api/openapi.json``: an OpenAPI 3.1 description of what this application answers (no auth, no secrets).

Each dialect contributes its paths, schemas and tags (``Dialect.openapi``), generated from the one command table;
the bridge's own endpoints and the schemas of the command table's argument types are described here, so every
dialect describes a type the same way.

It says what the server does, and a schemathesis run in the tests holds it to that: a value the schema forbids is
refused (``""`` for a required parameter, a ``;`` in a name, a state out of range …), every status an operation
answers is listed, and each path lists exactly the methods its 405 answers name in ``Allow``. What no schema can
say is left to the descriptions: end_time after start_time, the range of a time given as text, objects the engine
does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bridge import __version__
from bridge.core.command_table import ArgType, CommandSpec
from bridge.core.commands import NAGIOS_CUTS_AT_SEMICOLON
from bridge.core.values import MAX_OUTPUT_CHARS, MAX_TIMESTAMP, EngineKind
from bridge.http.dialects import Dialect, dialect_for
from bridge.http.jsonio import json_answer
from bridge.http.keys import CONFIG, DIALECTS

Schema = dict[str, Any]


def _string_form(pattern: str) -> Schema:
    """A number written as text, as the server takes it: surrounding white space is stripped."""
    return {"type": "string", "pattern": rf"^\s*(?:{pattern})\s*$"}


def ci(word: str) -> str:
    """``word`` in any letter case, as a pattern (JSON Schema patterns have no case-insensitive flag)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def counting(low: int | None, high: int | None, text: str, description: str = "") -> Schema:
    """A whole number from ``low`` to ``high``, as a JSON integer or as text matching ``text``."""
    bounds = {key: value for key, value in (("minimum", low), ("maximum", high)) if value is not None}
    schema: Schema = {"anyOf": [{"type": "integer", **bounds}, _string_form(text)]}
    return {**schema, "description": description} if description else schema


ZERO = r"-0+"  # "-0" is 0
_WORDS = "|".join(ci(w) for w in ("true", "false", "yes", "no", "on", "off"))
ARG_SCHEMAS: dict[ArgType, Schema] = {
    ArgType.INT: counting(None, None, r"[+-]?\d+"),
    ArgType.ULONG: counting(0, 2**63 - 1, rf"\+?\d+|{ZERO}"),
    ArgType.SERVICE_STATE: counting(0, 3, rf"\+?0*[0-3]|{ZERO}", "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"),
    ArgType.HOST_STATE: counting(0, 2, rf"\+?0*[0-2]|{ZERO}", "0 UP, 1 DOWN, 2 UNREACHABLE"),
    ArgType.STICKY: {"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 2},
                               _string_form(rf"\+?0*[0-2]|{ZERO}|{ci('true')}|{ci('false')}")],
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
NAME = {"type": ["string", "number"], "minLength": 1, "pattern": r"^[^;\r\n\x00]*$"}
FREE_TEXT = {"type": ["string", "number"], "minLength": 1, "pattern": r"^[^\r\n\x00]*$",
              "description": "may contain ';', not a line break"}


def param_schema(spec: CommandSpec, kind: ArgType, last: bool, engine: EngineKind) -> Schema:
    if kind in ARG_SCHEMAS:
        return dict(ARG_SCHEMAS[kind])
    if kind is ArgType.STR and last and not (engine is EngineKind.NAGIOS and spec.name in NAGIOS_CUTS_AT_SEMICOLON):
        return dict(FREE_TEXT)
    return dict(NAME)


def json_body(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


_RETRY = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": "Basic realm", "schema": {"type": "string"}}}


_MEANINGS = {400: "bad input (names the parameter)", 401: "missing or wrong credentials",
             403: "no right to this command or object", 404: "no such command on this engine",
             413: "body too large", 415: "Content-Type is not application/json",
             429: "too many failed logins (or logins waiting for a password check)",
             503: "neither the engine's pipe nor the spool could take it: nothing was written"}


def errors(codes: tuple[int, ...], schema: str, meanings: Mapping[int, str] | None = None) -> dict[str, Schema]:
    """The error answers ``codes``, each following ``schema``; ``meanings`` says what a dialect means by a code
    where that differs from the usual."""
    meanings = {**_MEANINGS, **(meanings or {})}
    answers: dict[str, Schema] = {}
    for code in codes:
        answer = json_body(ref(schema), meanings[code])
        if code == 401:
            answer["headers"] = _CHALLENGE
        elif code in (429, 503):
            answer["headers"] = _RETRY
        answers[str(code)] = answer
    return answers



SECURE: list[dict[str, list[str]]] = [{"basic": []}]
_STALE = "|".join(["1", "0", ""] + [ci(w) for w in ("true", "yes", "false", "no")])


def _own_paths(error_schema: str) -> dict[str, Any]:
    """The bridge's own endpoints; ``error_schema``: the error shape of the dialect they answer in."""
    health = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "degraded"]}}}
    freshness = {"type": "object", "required": ["objects", "counts"], "properties": {
        "objects": {"type": "array", "items": {"type": "object"}},
        "counts": {"type": "object", "properties": {"fresh": {"type": "integer"}, "stale": {"type": "integer"}}}}}
    return {
        "/api/freshness": {"get": {
            "operationId": "freshness", "security": SECURE,
            "summary": "When each object last reported, against its threshold (only what the user's grants cover)",
            "parameters": [
                {"name": "stale", "in": "query", "required": False,
                 "schema": {"type": "string", "pattern": f"^(?:{_STALE})$"}},
                {"name": "host", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": json_body(freshness, "objects and counts"),
                          **errors((400, 401, 429), error_schema)}}},
        "/api/openapi.json": {"get": {"operationId": "openapi", "summary": "This document, no auth",
                                      "responses": {"200": json_body({"type": "object"}, "OpenAPI 3.1")}}},
        "/health": {"get": {"operationId": "health", "summary": "Engine and spool state, no auth",
                            "responses": {"200": json_body(health, "ok"), "503": json_body(health, "degraded")}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus exposition, no auth",
                             "responses": {"200": {"description": "metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}}}}},
    }


def openapi_document(engine: EngineKind, dialects: tuple[Dialect, ...]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    tags: list[dict[str, str]] = []
    for dialect in dialects:
        part = dialect.openapi(engine)
        paths.update(part.paths)
        schemas.update(part.schemas)
        tags += part.tags
    own = _own_paths(dialect_for("/api/freshness", dialects).error_schema)
    paths.update(own)
    return {
        "openapi": "3.1.0",
        "info": {"title": "naemon-bridge", "version": __version__,
                 "description": "Passive check results and external commands into Naemon or Nagios "
                                f"(configured engine: {engine.value})."},
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": schemas,
        },
    }


async def openapi_view(request: web.Request) -> web.Response:
    return json_answer(openapi_document(request.app[CONFIG].current.engine.kind, request.app[DIALECTS]))
