"""OP5 Monitor style (op5-command-api.md): ``POST /api/command/<COMMAND>``, its discovery endpoints and the batch
endpoint ``POST /api/results``. Maps HTTP to the core and back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import hdrs, web

from bridge import permissions
from bridge.appkeys import AUTH, CLOCK, CONFIG
from bridge.auth import Principal
from bridge.bodies import FORM_TYPES, form_fields, read_body
from bridge.command_table import COMMANDS, CommandSpec
from bridge.commands import command_from_params, defaults, find_command, parameters, parse_timestamp
from bridge.errors import (
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
from bridge.jsonio import DocumentRefused, json_answer, loads
from bridge.submission import admit, submit_commands
from bridge.values import Command

REALM = 'Basic realm="naemon-bridge"'
MAX_BATCH_PROBLEMS = 20  # problems listed in one answer; the count says how many there were


async def authenticate(request: web.Request) -> Principal:
    return await request.app[AUTH].authenticate(request.headers.get("Authorization"), client_address(request))


def client_address(request: web.Request) -> str:
    """Who is calling, for the failed-login throttle. On TCP the peer; on the hub's Unix socket (``[server]
    workers``, which nobody but its workers can reach) the address the worker forwarded."""
    return request.remote or request.headers.get(hdrs.X_FORWARDED_FOR) or ""


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
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            commands.append(_batch_result(index, item, now, principal.name))
        except InvalidInput as exc:
            problems.append(f"results[{index}].{exc.field}: {exc.message}" if exc.field else str(exc))
    if problems:
        listed = "; ".join(problems[:MAX_BATCH_PROBLEMS])
        more = f" (and {len(problems) - MAX_BATCH_PROBLEMS} more)" if len(problems) > MAX_BATCH_PROBLEMS else ""
        raise InvalidInput("", f"{len(problems)} of {len(items)} results are invalid, none was submitted: "
                               f"{listed}{more}")
    await admit(request.app, principal, commands)
    await submit_commands(request.app, commands)
    return json_answer({"result": f"Successfully submitted {len(commands)} results",
                              "accepted": len(commands)})


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
