"""Alignak WS style: ``PATCH /host/<host_name>`` (alignak-ws.md). Maps HTTP to ``bridge.core.alignak`` and back;
its routes, error shape and OpenAPI part are ``DIALECT``.

Alignak answers problems with ``_status: ERR`` and HTTP 200; only transport problems get other codes (malformed
JSON 400, content type 415, auth 401).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bridge.core.alignak import HostUpdate, host_feedback, plan_command, plan_event, plan_host_update
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
from bridge.http.dialects import Dialect, Route
from bridge.http.jsonio import json_answer, loads
from bridge.http.keys import CLOCK, CONFIG, ENGINE_FILES, FRESHNESS, METRICS
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
    return json_answer({"_status": "OK", "_result": [command_text(command)]})


async def _document(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise BadRequestBody(415, f"Content-Type must be application/json, not '{request.content_type}'")
    body = await request.read()
    if not body.strip():
        return {}
    try:
        document = loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequestBody(400, f"Invalid JSON document: {exc.msg} at line {exc.lineno} column {exc.colno} "
                                  f"(JSON needs true/false, not Python's True/False, and no trailing commas)") from None
    except UnicodeDecodeError:
        raise BadRequestBody(400, "Invalid JSON document: the body is not UTF-8") from None
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


def openapi_part(engine: EngineKind) -> tuple[dict[str, Any], dict[str, Any]]:
    return {}, {}  # not described yet


DIALECT = Dialect(name="alignak", routes=_routes(), render_error=render_error, claims=_claims, openapi=openapi_part)
