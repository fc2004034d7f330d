"""``GET /api/openapi.json``: an OpenAPI 3.1 description of what this application answers (no auth, no secrets).

Each dialect contributes its paths and schemas (``Dialect.openapi``), generated from the one command table; the
schemas of the command table's argument types are shared here so every dialect describes a type the same way.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge import __version__
from bridge.core.command_table import ArgType
from bridge.core.values import EngineKind
from bridge.http.dialects import Dialect
from bridge.http.jsonio import json_answer
from bridge.http.keys import CONFIG, DIALECTS

LOOSE_INT = {"type": ["integer", "string"], "pattern": r"^\s*[+-]?\d+\s*$"}
ARG_SCHEMAS: dict[ArgType, dict[str, Any]] = {
    ArgType.INT: LOOSE_INT,
    ArgType.ULONG: {**LOOSE_INT, "minimum": 0},
    ArgType.SERVICE_STATE: {**LOOSE_INT, "minimum": 0, "maximum": 3,
                            "description": "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"},
    ArgType.HOST_STATE: {**LOOSE_INT, "minimum": 0, "maximum": 2, "description": "0 UP, 1 DOWN, 2 UNREACHABLE"},
    ArgType.STICKY: {"type": ["integer", "string", "boolean"], "description": "0, 1 or 2 (2 = sticky; true = 2)"},
    ArgType.BOOL: {"type": ["boolean", "integer", "string"], "description": "true/false, 1/0, \"true\"/\"false\""},
    ArgType.TIMESTAMP: {"type": ["integer", "string"],
                        "description": "unix seconds, ISO 8601 (no offset: local time) or +30m / +2h / +1d"},
    ArgType.OUTPUT: {"type": "string", "description": "short|perfdata, then long output after a newline"},
}


def openapi_document(engine: EngineKind, dialects: tuple[Dialect, ...]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for dialect in dialects:
        dialect_paths, dialect_schemas = dialect.openapi(engine)
        paths.update(dialect_paths)
        schemas.update(dialect_schemas)
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
            "schemas": schemas,
        },
    }


async def openapi_view(request: web.Request) -> web.Response:
    return json_answer(openapi_document(request.app[CONFIG].current.engine.kind, request.app[DIALECTS]))
