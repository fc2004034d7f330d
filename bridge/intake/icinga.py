"""Icinga 2's REST API action ``POST /v1/actions/process-check-result`` (docs/research/nrdp-icinga.md: its
answers observed from a real Icinga 2.13): the target as ``service=host!svc`` / ``host=name`` or a ``filter``
with ``type``; ``exit_status``, ``plugin_output``, ``performance_data``, ``ttl`` (the object's freshness threshold).
Answers in Icinga 2's shapes: ``{"results": [{"code", "status"}]}`` per object, ``{"error", "status"}`` for the
request.

Where Icinga 2 answers 500 (a value of the wrong type, a filter matching nothing) the bridge answers 400 and 404
in the same shapes: no bad input is a server error here.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import hdrs, web

from bridge.core.command_table import COMMANDS
from bridge.core.commands import command_from_params
from bridge.core.errors import (
    BadRequestBody,
    BridgeError,
    EngineRefused,
    EngineUnavailable,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    Throttled,
    UnknownObject,
)
from bridge.core.values import Command, EngineKind, compose_output
from bridge.http.auth import authenticate
from bridge.http.bodies import read_body
from bridge.http.dialects import ApiDescription, Dialect, Route
from bridge.http.jsonio import DocumentRefused, loads
from bridge.http.keys import CLOCK, ENGINE_FILES, FRESHNESS
from bridge.http.openapi import SECURE
from bridge.http.submission import admit, submit_commands

log = logging.getLogger("naemon_bridge.icinga")

PATH = "/v1/actions/process-check-result"
REALM = 'Basic realm="Icinga 2"'
NOT_ACCEPTED = b"<h1>Accept header is missing or not set to 'application/json'.</h1>"
NO_OBJECTS = "No objects found."
UNAUTHORIZED = "Unauthorized. Please check your user credentials."


class ActionError(BridgeError):
    """A refusal in Icinga 2's own shape: ``{"error": code, "status": text}`` (``per_object``: inside
    ``results``, as Icinga 2 answers a bad parameter)."""

    def __init__(self, code: int, status: str, *, per_object: bool = False) -> None:
        super().__init__(status)
        self.code, self.status, self.per_object = code, status, per_object


def _json(data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")


async def process_check_result_view(request: web.Request) -> web.Response:
    if request.headers.get(hdrs.ACCEPT) != "application/json":  # Icinga 2 takes this header and no other
        return web.Response(body=NOT_ACCEPTED, status=400, content_type="text/html")
    principal = await authenticate(request)
    params = await _parameters(request)
    targets = await _targets(request, params)
    now = int(request.app[CLOCK]())
    commands = [_command(host, service, params, now=now, author=principal.name) for host, service in targets]
    ttl = _number(params, "ttl")
    for name in ("execution_start", "execution_end"):  # checked as Icinga 2 checks them; the engine takes neither
        _number(params, name)
    await admit(request.app, principal, commands)
    await submit_commands(request.app, commands)
    freshness = request.app[FRESHNESS]
    for host, service in targets:  # a ttl holds for the result that carried it: one without ttl ends it
        freshness.set_ttl(host, service, ttl)
    return _json({"results": [{"code": 200, "status": f"Successfully processed check result for object "
                                                      f"'{host if service is None else f'{host}!{service}'}'."}
                              for host, service in targets]})


async def _parameters(request: web.Request) -> dict[str, Any]:
    """The body as JSON whatever its content type says (Icinga 2's own curl examples send a form type), with
    the URL's parameters over it, as Icinga 2 merges them."""
    body = await read_body(request)
    params: dict[str, Any] = {}
    if body.strip():
        try:
            data = loads(body)
        except (ValueError, UnicodeDecodeError, DocumentRefused) as exc:
            raise ActionError(400, f"Invalid request body: Error: {exc}\n") from None
        if not isinstance(data, dict):
            raise ActionError(400, f"Invalid request body: the body must be a JSON object, not "
                                   f"{type(data).__name__}\n")
        params.update(data)
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values[0] if len(values) == 1 else values
    return params


Target = tuple[str, str | None]

# The filters the clients write: host.name=="x", and with && service.name=="y" (either order), each side a string
# literal or a name from filter_vars.
_TERM = re.compile(r'\s*(host|service)\.name\s*==\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*))\s*')


def _filter_terms(text: str, variables: object) -> dict[str, str]:
    terms: dict[str, str] = {}
    for part in text.split("&&"):
        match = _TERM.fullmatch(part)
        if match is None:
            raise ActionError(400, f"filter {text!r} is not supported by naemon-bridge: it takes host.name==\"x\" "
                                   "and service.name==\"y\" joined with &&, the values literal strings or names "
                                   "from filter_vars")
        kind, literal, name = match.groups()
        if name is not None:
            if not isinstance(variables, dict) or not isinstance(variables.get(name), str):
                raise ActionError(404, NO_OBJECTS)  # as Icinga 2: an unknown name matches nothing
            value = variables[name]
        else:
            value = re.sub(r"\\(.)", r"\1", literal)
        if kind in terms and terms[kind] != value:
            raise ActionError(404, NO_OBJECTS)
        terms[kind] = value
    return terms


async def _targets(request: web.Request, params: Mapping[str, Any]) -> list[Target]:
    objects = await request.app[ENGINE_FILES].objects()
    kind = params.get("type")
    service, host = params.get("service"), params.get("host")
    if isinstance(service, str) and (kind is None or kind == "Service"):
        host_name, bang, description = service.partition("!")
        if not bang or not host_name or not description:
            raise ActionError(404, NO_OBJECTS)
        targets: list[Target] = [(host_name, description)]
    elif isinstance(host, str) and (kind is None or kind == "Host"):
        targets = [(host, None)]
    elif isinstance(params.get("filter"), str) and kind in ("Host", "Service"):
        terms = _filter_terms(params["filter"], params.get("filter_vars"))
        if "host" not in terms:
            raise ActionError(400, f"filter {params['filter']!r} is not supported by naemon-bridge: it must name "
                                   "host.name")
        if kind == "Host":
            if "service" in terms:
                raise ActionError(404, NO_OBJECTS)
            targets = [(terms["host"], None)]
        elif "service" in terms:
            targets = [(terms["host"], terms["service"])]
        elif objects is None:
            raise ActionError(400, "a filter on host.name alone for type Service needs the engine's objects "
                                   "(engine.objects_cache) to know the host's services")
        else:
            targets = sorted((h, s) for h, s in objects.services if h == terms["host"])
    else:
        raise ActionError(404, NO_OBJECTS)  # no target, a type that is neither, or a type the target is not
    if objects is not None:
        targets = [(h, s) for h, s in targets
                   if (h in objects.hosts if s is None else (h, s) in objects.services)]
    if not targets:
        raise ActionError(404, NO_OBJECTS)
    return targets


def _number(params: Mapping[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ActionError(400, f"Parameter '{name}' must be a number, not {params[name]!r}.",
                              per_object=True) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ActionError(400, f"Parameter '{name}' must be a number of seconds, not {params[name]!r}.",
                          per_object=True)
    return float(value)


def _exit_status(params: Mapping[str, Any], host: str, service: str | None) -> int:
    value = params.get("exit_status")
    if value is None:
        raise ActionError(400, "Parameter 'exit_status' is required.", per_object=True)
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None or not math.isfinite(number) or abs(number) > 2**31:
        raise ActionError(400, f"Parameter 'exit_status' must be a number, not {value!r}.", per_object=True)
    code = int(number)
    if service is None:  # Icinga 2: 0 UP, 1 DOWN, anything else refused
        if code not in (0, 1):
            raise ActionError(400, f"Invalid 'exit_status' for Host {host}.", per_object=True)
        return code
    return code if 0 <= code <= 3 else 3  # Icinga 2's plugin states: anything else is UNKNOWN


def _performance_data(params: Mapping[str, Any]) -> str:
    perf = params.get("performance_data")
    if perf is None:
        return ""
    if isinstance(perf, str):
        return " ".join(perf.split())
    if isinstance(perf, list) and all(isinstance(item, str) for item in perf):
        return " ".join(item.strip() for item in perf if item.strip())  # Icinga 2 joins them with spaces
    raise ActionError(400, "Parameter 'performance_data' must be a string or a list of strings.", per_object=True)


def _command(host: str, service: str | None, params: Mapping[str, Any], *, now: int, author: str) -> Command:
    state = _exit_status(params, host, service)
    output = params.get("plugin_output")
    if output is None:
        raise ActionError(400, "Parameter 'plugin_output' is required", per_object=True)  # (no period: Icinga's)
    if isinstance(output, bool) or not isinstance(output, str | int | float):
        raise ActionError(400, "Parameter 'plugin_output' must be a string.", per_object=True)
    source = params.get("check_source")
    if source is not None and not isinstance(source, str):
        raise ActionError(400, "Parameter 'check_source' must be a string.", per_object=True)
    first, _, rest = str(output).partition("\n")  # the performance data belongs to the first line
    text = compose_output(first, rest, perf_data=_performance_data(params))
    # Icinga 2 records the time of receipt as the check time, not execution_end: so does the bridge.
    if service is None:
        return command_from_params(COMMANDS["PROCESS_HOST_CHECK_RESULT"], {
            "host_name": host, "status_code": state, "plugin_output": text}, now=now, author=author)
    return command_from_params(COMMANDS["PROCESS_SERVICE_CHECK_RESULT"], {
        "host_name": host, "service_description": service, "status_code": state, "plugin_output": text},
        now=now, author=author)


def render_error(request: web.Request, status: int, message: str, error: BridgeError | None) -> web.Response:
    """Icinga 2's error shapes: ``{"error": code, "status": text}``, or per object inside ``results`` for a bad
    parameter."""
    headers: dict[str, str] = {}
    code = status or 400
    per_object = False
    if isinstance(error, ActionError):
        code, message, per_object = error.code, error.status, error.per_object
    elif isinstance(error, UnknownObject):
        code, message = 404, NO_OBJECTS
    elif isinstance(error, InvalidInput):
        code, per_object = 400, True
    elif isinstance(error, BadRequestBody):
        code = error.status
    elif isinstance(error, NotAuthenticated):
        log.debug("401 for %s %s from %s: %s", request.method, request.path, request.remote, message)
        code, message = 401, UNAUTHORIZED
        headers["WWW-Authenticate"] = REALM
    elif isinstance(error, NotPermitted):
        code = 403
    elif isinstance(error, Throttled):
        code = 429
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, EngineRefused):
        code, per_object = 400, True
    elif isinstance(error, EngineUnavailable):
        code = 503
        headers["Retry-After"] = "5"
    elif status == 404:
        message = (f"The requested path '{request.path.lstrip('/')}' could not be found or the request method "
                   "is not valid for this path.")
    if per_object:
        return _json({"results": [{"code": code, "status": message}]}, code, headers)
    return _json({"error": code, "status": message}, code, headers)


_RESULT = {"type": "object", "required": ["code", "status"], "properties": {
    "code": {"type": "integer"}, "status": {"type": "string"}}}


def openapi_part(engine: EngineKind) -> ApiDescription:
    body = {"type": "object", "properties": {
        "type": {"enum": ["Host", "Service"]}, "filter": {"type": "string"}, "filter_vars": {"type": "object"},
        "host": {"type": "string"}, "service": {"type": "string", "description": "host!service"},
        "exit_status": {"type": ["integer", "string"], "description": "services 0-3 (others: 3), hosts 0 UP, 1 DOWN"},
        "plugin_output": {"type": ["string", "number"]},
        "performance_data": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "check_source": {"type": "string", "description": "accepted; the engine has no such field"},
        "execution_start": {"type": "number"}, "execution_end": {"type": "number"},
        "ttl": {"type": "number", "minimum": 0, "description": "seconds: the object's freshness threshold"}},
        "required": ["exit_status", "plugin_output"]}
    results = {"type": "object", "required": ["results"], "properties": {"results": {"type": "array",
                                                                                     "items": _RESULT}}}
    answers = {"200": {"description": "one result per object", "content": {"application/json": {
        "schema": results}}}}
    for code, meaning in ((400, "a bad parameter (in results) or body; or no Accept: application/json (HTML)"),
                          (401, "missing or wrong credentials"), (403, "the user's grants do not cover it"),
                          (404, "No objects found."), (413, "body too large"), (429, "too many failed logins"),
                          (503, "the engine and the spool cannot take it")):
        answers[str(code)] = {"description": meaning, "content": {
            "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/IcingaError"}, results]}},
            **({"text/html": {"schema": {"type": "string"}}} if code == 400 else {})}}
    accept = {"name": "Accept", "in": "header", "required": True, "schema": {"const": "application/json"}}
    target = [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
              for name in ("host", "service")]
    post = {"operationId": "icinga_process_check_result", "tags": ["icinga"], "security": SECURE,
            "summary": "Icinga 2's process-check-result: one check result for each object the target names",
            "parameters": [accept, *target],
            "requestBody": {"content": {"application/json": {"schema": body}}}, "responses": answers}
    error = {"type": "object", "required": ["error", "status"], "properties": {
        "error": {"type": "integer"}, "status": {"type": "string"}}}
    return ApiDescription({PATH: {"post": post}}, {"IcingaError": error}, [{
        "name": "icinga", "description": "Icinga 2's REST API action process-check-result (basic auth)"}])


def _claims(path: str) -> bool:
    return path.startswith("/v1/")


DIALECT = Dialect(
    name="icinga",
    routes=(Route("POST", PATH, process_check_result_view),),
    render_error=render_error,
    claims=_claims,
    openapi=openapi_part,
    error_schema="IcingaError",
    internal_error=orjson.dumps({"error": 500, "status": "internal error: see the bridge's log"}),
)
