"""OP5 Monitor style: ``POST /api/command/<COMMAND>`` (op5-command-api.md). Maps HTTP to the core and back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

from bridge.appkeys import AUTH, CLOCK, CONFIG, DELIVERY, ENGINE_FILES
from bridge.command_table import Target
from bridge.commands import command_from_params, command_line, find_command
from bridge.errors import (
    BadRequestBody,
    BridgeError,
    EngineUnavailable,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    UnknownCommand,
    UnknownObject,
)

# Targets any authenticated user may act on; the rest (contacts, the whole engine, the process) need a grant.
DEFAULT_TARGETS = frozenset({Target.HOST, Target.SERVICE, Target.HOSTGROUP, Target.SERVICEGROUP})
REALM = 'Basic realm="naemon-bridge"'


async def command_view(request: web.Request) -> web.Response:
    principal = await request.app[AUTH].authenticate(request.headers.get("Authorization"))
    engine = request.app[CONFIG].engine.kind
    spec = find_command(request.match_info["command"].upper(), engine)
    if spec.target not in DEFAULT_TARGETS:
        raise NotPermitted(f"user '{principal.name}' is not permitted to run {spec.name} "
                           f"(commands on the {spec.target.value} need an explicit grant)")
    params = await _parameters(request)
    command = command_from_params(spec, params, now=int(request.app[CLOCK]()), author=principal.name)
    objects = await request.app[ENGINE_FILES].objects()
    if objects is not None:
        objects.check(command)
    await request.app[DELIVERY].submit([command_line(command, engine).encode()])
    return web.json_response({"result": f"Successfully submitted {spec.name}"})


async def _parameters(request: web.Request) -> Mapping[str, object]:
    """JSON or form parameters; the query string (``?format=json``) is accepted and ignored."""
    body = await request.read()
    if not body.strip():
        return {}
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data") \
            and not body.lstrip().startswith(b"{"):  # curl -d '{…}' without a JSON content type still sends JSON
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestBody(400, f"the body is not valid JSON: {exc}") from None
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
    elif isinstance(error, UnknownCommand):
        status, short = 404, "Unknown command"
    elif isinstance(error, EngineUnavailable):
        status, short = 503, "Engine unavailable"
        headers["Retry-After"] = "5"
    return web.json_response({"error": short, "full_error": message}, status=status or 500, headers=headers)
