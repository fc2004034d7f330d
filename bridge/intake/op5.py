"""OP5 Monitor style (op5-command-api.md): ``POST /api/command/<COMMAND>``, its discovery and help endpoints and
the batch endpoint ``POST /api/results``. Maps HTTP to the core and back; its routes, error shape and OpenAPI part
are ``DIALECT``.

What op5's own command layer does with a parameter and the core does not (docs/research/op5-command-layer.md) is
done here, so the other dialects keep the engine's meaning: ``duration`` in hours, booleans left out filled with
op5's values, ``sticky`` 1 meaning sticky, ``perf_data`` on check results, parameters a command does not take
ignored (and named in ``warnings``). ``POST /api/results`` carries check results only and keeps its own checks.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from html import escape
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import orjson
from aiohttp import hdrs, web

from bridge.core import permissions
from bridge.core.command_table import COMMANDS, ArgType, CommandSpec
from bridge.core.commands import (
    command_from_params,
    defaults,
    find_command,
    is_downtime,
    parameters,
    parse_boolean,
    parse_timestamp,
)
from bridge.core.errors import (
    BadRequestBody,
    BridgeError,
    EngineRefused,
    EngineUnavailable,
    InvalidInput,
    MissingParameter,
    NotAuthenticated,
    NotPermitted,
    Throttled,
    UnknownCommand,
    UnknownObject,
)
from bridge.core.values import (
    MAX_OUTPUT_CHARS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    Command,
    EngineKind,
    checked_output,
    compose_output,
)
from bridge.http import turns
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
from bridge.http.xmlio import xml_answer

log = logging.getLogger("naemon_bridge.op5")

REALM = 'Basic realm="naemon-bridge"'
MAX_BATCH_PROBLEMS = 20  # problems (or ignored parameters) listed in one answer; the count says how many there were
# op5's answer to a request without valid credentials (op5's HOWTO on its REST API), whatever the reason: the
# reason itself is logged at debug level.
UNAUTHORIZED = {"error": "Unauthorized", "full_error": "You need to login to access this page"}


async def command_view(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    engine = request.app[CONFIG].current.engine.kind
    spec = find_command(request.match_info["command"].upper(), engine)
    permissions.check_command(principal.name, principal.grants, spec)
    now = int(request.app[CLOCK]())
    params, ignored = op5_parameters(spec, await _parameters(request), now=now, user=principal.name)
    try:
        command = command_from_params(spec, params, now=now, author=principal.name)
    except MissingParameter as exc:  # a misspelt required parameter: say which ignored one it may have been
        raise MissingParameter(exc.field, exc.message + _did_you_mean(exc.field, ignored)) from None
    await admit(request.app, principal, [command])
    await submit_commands(request.app, [command])
    if not ignored:
        return answer(request, {"result": f"Successfully submitted {spec.name}"})
    log.debug("%s from %s: ignored parameters %s", spec.name, principal.name, ", ".join(map(repr, ignored)))
    warnings = [f"ignored parameter '{name}': {spec.name} takes no such parameter"
                for name in ignored[:MAX_BATCH_PROBLEMS]]
    if len(ignored) > MAX_BATCH_PROBLEMS:
        warnings.append(f"and {len(ignored) - MAX_BATCH_PROBLEMS} more ignored parameters")
    return answer(request, {"result": f"Successfully submitted {spec.name}", "warnings": warnings})


def answer(request: web.Request, data: object, *, status: int = 200,
           headers: Mapping[str, str] | None = None) -> web.Response:
    """JSON, or XML when the request asks ``?format=xml`` (op5's format parameter; any other value: JSON)."""
    if request.query_string and request.query.get("format", "").strip().lower() == "xml":
        return xml_answer(data, status=status, headers=headers)
    return json_answer(data, status=status, headers=headers)


# -- op5's command layer: what its endpoint does with parameters (docs/research/op5-command-layer.md) ---------------

@dataclass(frozen=True, slots=True)
class Op5Form:
    """How op5's endpoint reads one command's parameters, derived once per command."""

    takes: frozenset[str]  # the engine's parameters, and perf_data on a check result
    fills: Mapping[str, object]  # a parameter left out (or empty) becomes this value, as op5's ORM writes it
    described: Mapping[str, str]  # every default op5's endpoint applies, in words (the core's too)
    comment_by: str  # an empty comment becomes "<comment_by> <author>" (op5's ORM, since 2023)
    hours: bool  # takes a duration: in hours here
    sticky: bool
    perf_data: bool
    check_time: bool  # check_time left out is now
    plain: bool  # none of the above: the parameters pass as they are, but for the ones it does not take
    only_perf_data: bool  # a check result: nothing to do unless perf_data is given


@cache
def op5_form(spec: CommandSpec) -> Op5Form:
    names = {p.name for p in parameters(spec)}
    fills: dict[str, object] = {}
    described = dict(defaults(spec))
    comment_by = ""
    if spec.name.startswith("ACKNOWLEDGE_"):  # op5's ORM writes sticky ? 2 : 0, notify ? 1 : 0 … of null
        fills.update(sticky=False, notify=False, persistent=False)
        comment_by = "Acknowledged by"
    elif spec.name in ("ADD_HOST_COMMENT", "ADD_SVC_COMMENT"):  # op5's ORM always writes persistent 1
        fills["persistent"] = True
    if is_downtime(spec):  # fixed: 1 already (the core's default, op5's "not flexible")
        comment_by = "Scheduled by"
    described.update({name: "1" if value else "0" for name, value in fills.items()})
    if comment_by and "comment" in names:
        described["comment"] = f"{comment_by} <author>"
    check_time = "check_time" in names and spec.name.startswith("SCHEDULE_")
    if check_time:
        described["check_time"] = "now"
    perf_data = spec.name in ("PROCESS_HOST_CHECK_RESULT", "PROCESS_SERVICE_CHECK_RESULT")
    hours, sticky = "duration" in names, "sticky" in names
    return Op5Form(frozenset(names | ({"perf_data"} if perf_data else set())), MappingProxyType(fills),
                   MappingProxyType(described), comment_by if "comment" in names else "", hours, sticky, perf_data,
                   check_time, not (fills or comment_by or hours or sticky or perf_data or check_time),
                   perf_data and not (fills or comment_by or hours or sticky or check_time))


def op5_parameters(spec: CommandSpec, given: Mapping[str, object], *, now: int,
                   user: str) -> tuple[Mapping[str, object], list[str]]:
    """The parameters as the core takes them, and the names of those ``spec`` does not take (ignored, as op5
    ignores them)."""
    form = op5_form(spec)
    if form.takes.issuperset(given):
        ignored: list[str] = []
        if form.plain or (form.only_perf_data and "perf_data" not in given):  # most requests: nothing to do
            return given, ignored
    else:
        ignored = [name for name in given if name not in form.takes]
        for name in ignored:  # no op5 parameter takes a list or an object: that is no typo, but a wrong body
            if isinstance(given[name], list | dict):
                raise InvalidInput(name, f"is not a parameter of {spec.name}, and no op5 parameter takes a "
                                         f"{type(given[name]).__name__}")
        if form.plain:
            return {name: value for name, value in given.items() if name in form.takes}, ignored
    params = {name: value for name, value in given.items() if name in form.takes}
    for name, value in form.fills.items():
        if _absent(params.get(name)):
            params[name] = value
    if form.check_time and _absent(params.get("check_time")):
        params["check_time"] = now
    if form.hours and not _absent(params.get("duration")):
        params["duration"] = hours_to_seconds(params["duration"])
    if form.sticky:
        params["sticky"] = op5_sticky(params.get("sticky"))
    if form.perf_data:
        perf = params.pop("perf_data", None)
        if not _absent(perf):
            params["plugin_output"] = _with_perf_data(params.get("plugin_output"), perf)
    if form.comment_by:
        comment = params.get("comment")
        if comment is None or (isinstance(comment, str) and not comment.strip()):
            author = params.get("author")
            params["comment"] = f"{form.comment_by} {author if isinstance(author, str) and author else user}"
    return params, ignored


def _absent(value: object) -> bool:
    return value is None or value == ""  # as the core reads a parameter: null and "" are left out


_HOURS = re.compile(r"\s*\+?(\d+(\.\d*)?|\.\d+)\s*")
_MAX_SECONDS = 2**63 - 1


def hours_to_seconds(value: object) -> int:
    """op5's ``duration``: hours, a fraction allowed ("1.5" is 5400 s), cut to whole seconds as op5 cuts it."""
    hours: Decimal | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        hours = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        hours = Decimal(repr(value))  # 1.1 is 3960 s, not 3960.0000000000005 cut to 3960 by luck
    elif isinstance(value, str) and _HOURS.fullmatch(value):
        hours = Decimal(value.strip())
    if hours is None or hours < 0:
        raise InvalidInput("duration", f"must be a number of hours (2, 1.5 or \"0.25\": op5 reads hours), "
                                       f"not {value!r}")
    seconds = int(hours * 3600)
    if seconds > _MAX_SECONDS:
        raise InvalidInput("duration", f"is too long: {value!r} hours")
    return seconds


def op5_sticky(value: object) -> object:
    """op5's ORM writes ``sticky ? 2 : 0``: 1 (op5's own example), true or 2 is a sticky acknowledgement (2), 0 or
    false is not. Strict: only the booleans the bridge reads anywhere else, and 2."""
    if _absent(value):
        return value
    if not isinstance(value, bool) and (value == 2 or (isinstance(value, str) and value.strip() == "2")):
        return 2
    try:
        return parse_boolean("sticky", value)  # the core writes True as 2, False as 0
    except InvalidInput:
        raise InvalidInput("sticky", f"must be true, 1 or 2 (sticky) or false or 0 (not sticky), not {value!r}") \
            from None


def _with_perf_data(output: object, perf: object) -> object:
    """op5's ORM appends ``|perf_data`` to the output."""
    if isinstance(perf, bool) or not isinstance(perf, str | int | float):
        raise InvalidInput("perf_data", f"must be a string, not {type(perf).__name__}")
    if output is None:
        output = ""
    if isinstance(output, int | float) and not isinstance(output, bool):
        output = str(output)
    if not isinstance(output, str):
        return output  # the core names plugin_output's problem
    return compose_output(output, perf_data=str(perf))


def _did_you_mean(missing: str, ignored: list[str]) -> str:
    if not ignored:
        return ""
    close = difflib.get_close_matches(missing, ignored, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (ignored: {', '.join(repr(name) for name in ignored)})"


async def results_view(request: web.Request) -> web.Response:
    """``POST /api/results``: a JSON list of check results with op5's keys, validated all or nothing."""
    principal = await authenticate(request)
    body = await read_body(request)
    await turns.take_turn()
    started = time.perf_counter()
    try:
        items = _json(body)
        if not isinstance(items, list):
            raise BadRequestBody(400, f"the body must be a JSON list of results, not {type(items).__name__}")
        commands, positions, problems = _batch_commands(items, int(request.app[CLOCK]()), principal.name)
    finally:
        turns.spent(started)
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
    return answer(request, {"result": f"Successfully submitted {len(commands)} results", "accepted": len(commands)})


def _batch_commands(items: list[object], now: int, author: str) -> tuple[list[Command], list[int], dict[int, str]]:
    """Each valid result's command and its index in the request; each invalid one's problem, by index."""
    commands: list[Command] = []
    positions: list[int] = []  # each command's index in the request
    problems: dict[int, str] = {}
    for index, item in enumerate(items):
        try:
            commands.append(_plain_result(item, now) or _batch_result(index, item, now, author))
            positions.append(index)
        except InvalidInput as exc:
            problems[index] = _batch_problem(index, exc)
    return commands, positions, problems


def _batch_problem(index: int, exc: InvalidInput) -> str:
    return f"results[{index}].{exc.field}: {exc.message}" if exc.field else str(exc)


_PLAIN_KEYS = frozenset({"host_name", "service_description", "status_code", "plugin_output", "timestamp"})
_NOT_IN_NAMES = re.compile("[;\n\r\0]")  # what checked_field refuses in a name, found in one C call
_PLAIN_CODES = {"0": 0, "1": 1, "2": 2, "3": 3}
_SERVICE_RESULT, _HOST_RESULT = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"], COMMANDS["PROCESS_HOST_CHECK_RESULT"]
assert [p.name for p in parameters(_SERVICE_RESULT)] == ["host_name", "service_description", "status_code",
                                                          "plugin_output"]
assert [p.name for p in parameters(_HOST_RESULT)] == ["host_name", "status_code", "plugin_output"]


def _plain_result(item: object, now: int) -> Command | None:
    """The result nearly every sender sends — ASCII names, a state code, some output, maybe a unix time — checked
    in a few C calls; None for anything else, which ``_batch_result`` validates and names what is wrong with. A
    property test holds the two to the same commands."""
    if type(item) is not dict or not _PLAIN_KEYS.issuperset(item):
        return None
    host, service, code = item.get("host_name"), item.get("service_description"), item.get("status_code")
    output, stamp = item.get("plugin_output"), item.get("timestamp", now)
    if type(host) is not str or not host or not host.isascii() or _NOT_IN_NAMES.search(host):
        return None
    if type(stamp) is not int or not MIN_TIMESTAMP <= stamp <= MAX_TIMESTAMP:
        return None
    if type(code) is str:
        code = _PLAIN_CODES.get(code)
    if type(code) is not int or not 0 <= code <= (2 if service is None else 3):
        return None
    if type(output) is not str or not output.isascii() or "\0" in output or len(output) > MAX_OUTPUT_CHARS:
        return None
    output = checked_output("plugin_output", output)  # cannot refuse it now: line breaks normalised, as always
    if service is None:
        return Command(_HOST_RESULT, (host, str(code), output), stamp)
    if type(service) is not str or not service or not service.isascii() or _NOT_IN_NAMES.search(service):
        return None
    return Command(_SERVICE_RESULT, (host, service, str(code), output), stamp)


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
    return answer(request, {"commands": [{"name": s.name, "target": s.target.value} for s in names]})


async def template_view(request: web.Request) -> web.Response:
    """``GET /api/command/<COMMAND>``: its parameters, types, which are required, and the defaults."""
    principal = await authenticate(request)
    spec = find_command(request.match_info["command"].upper(), request.app[CONFIG].current.engine.kind)
    return answer(request, {**command_template(spec), "permitted": principal.grants.may_run(spec)})


# What op5's endpoint makes of a parameter, where the engine's type alone does not say it.
_DESCRIPTIONS = {
    "duration": "hours, a fraction allowed (1.5 = 90 minutes), as op5 reads it; the length of a flexible downtime "
                "(fixed 0)",
    "sticky": "true, 1 or 2: a sticky acknowledgement (op5 reads 1 as sticky); false or 0: not sticky",
    "perf_data": "performance data: appended to plugin_output after a '|', as op5 does",
}


def command_template(spec: CommandSpec) -> dict[str, object]:
    """The parameters op5's endpoint takes for ``spec``: names, types, required or not, defaults."""
    form = op5_form(spec)
    described = form.described
    rows: list[dict[str, object]] = []
    for p in parameters(spec):
        kind = "hours" if p.name == "duration" and form.hours else p.type.value
        rows.append({"name": p.name, "type": kind, "required": not p.optional and p.name not in described,
                     **({"default": described[p.name]} if p.name in described else {}),
                     **({"description": _DESCRIPTIONS[p.name]} if p.name in _DESCRIPTIONS else {})})
        if p.name == "plugin_output" and form.perf_data:
            rows.append({"name": "perf_data", "type": ArgType.STR.value, "required": False,
                         "description": _DESCRIPTIONS["perf_data"]})
    return {
        "command": spec.name,
        "target": spec.target.value,
        "engines": _engines(spec),
        "parameters": rows,
    }


def _engines(spec: CommandSpec) -> list[str]:
    return ["naemon"] if spec.naemon_only else ["naemon", "nagios"]


def _json(body: bytes) -> object:
    try:
        return loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestBody(400, f"the body is not valid JSON: {exc}") from None
    except DocumentRefused as exc:
        raise BadRequestBody(400, f"the body's JSON is refused: {exc}") from None


async def _parameters(request: web.Request) -> Mapping[str, object]:
    """JSON or form parameters; the query string is not read for them (it carries ``?format=``)."""
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


def render_error(request: web.Request, status: int, message: str, error: BridgeError | None) -> web.Response:
    """op5's error body ``{"error", "full_error"}`` with the status codes op5 clients rely on (XML when asked)."""
    headers: dict[str, str] = {}
    short = HTTPStatus(status).phrase if status else message
    if isinstance(error, UnknownObject):
        status, short = 400, "Unknown object"
    elif isinstance(error, InvalidInput):
        status, short = 400, f"Invalid parameter '{error.field}'" if error.field else "Invalid request"
    elif isinstance(error, BadRequestBody):
        status, short = error.status, "Invalid request body"
    elif isinstance(error, NotAuthenticated):
        log.debug("401 for %s %s from %s: %s", request.method, request.path, request.remote, message)
        return answer(request, UNAUTHORIZED, status=401, headers={"WWW-Authenticate": REALM})
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
    return answer(request, {"error": short, "full_error": message}, status=status or 500, headers=headers)


# -- Help pages: /api/help/command and /api/help/command/<COMMAND>, from the one command table ----------------------

# Example values by the engine's argument type, for the curl line of a help page.
_EXAMPLES: dict[ArgType, object] = {
    ArgType.HOST: "example_host_1", ArgType.SERVICE: "Example service", ArgType.HOSTGROUP: "example_hostgroup",
    ArgType.SERVICEGROUP: "example_servicegroup", ArgType.CONTACT: "example_contact",
    ArgType.CONTACTGROUP: "example_contactgroup", ArgType.TIMEPERIOD: "24x7", ArgType.INT: 0, ArgType.ULONG: 1,
    ArgType.BOOL: True, ArgType.TIMESTAMP: "+2h", ArgType.STR: "example", ArgType.SERVICE_STATE: 2,
    ArgType.HOST_STATE: 1, ArgType.STICKY: True, ArgType.OUTPUT: "Example issue has occurred",
}
_EXAMPLE_URL = "http://<bridge host>:8888"  # the bridge's default port; behind a proxy the URL differs
_INTRODUCTION = (
    "The bridge's op5-style command API: POST /api/command/<COMMAND> with the parameters as JSON or form fields "
    "and HTTP basic auth writes one external command into the engine's command pipe (or the spool while the engine "
    "does not read). Answers are JSON, or XML with ?format=xml: {\"result\": \"Successfully submitted <COMMAND>\"}, "
    "or {\"error\", \"full_error\"} with 400, 401, 404, 413, 429 or 503. GET /api/command/<COMMAND> gives a "
    "command's parameters as JSON; GET /api/openapi.json describes every endpoint.")


def _help_example(spec: CommandSpec) -> dict[str, object]:
    template = command_template(spec)
    parameter_types = {p.name: p.type for p in parameters(spec)}
    body = {row["name"]: _EXAMPLES[parameter_types[str(row["name"])]]
            for row in template["parameters"]  # type: ignore[attr-defined]
            if row["required"] or row["name"] == "plugin_output"}
    if "end_time" in body and "start_time" not in body:
        body["end_time"] = "+2h"
    text = json.dumps(body, ensure_ascii=False).replace("'", "'\\''")
    curl = (f"curl -u '<your username>:<your password>' -H 'content-type: application/json' -d '{text}' "
            f"'{_EXAMPLE_URL}/api/command/{spec.name}'")
    return {"method": "POST", "path": f"/api/command/{spec.name}", "body": body, "curl": curl,
            "response": {"result": f"Successfully submitted {spec.name}"}}


def _engine_specs(engine: EngineKind) -> list[CommandSpec]:
    return [spec for spec in COMMANDS.values() if not spec.naemon_only or engine is EngineKind.NAEMON]


def _wants(request: web.Request, fmt: str) -> bool:
    return request.query.get("format", "").strip().lower() == fmt


async def help_index_view(request: web.Request) -> web.Response:
    """``GET /api/help/command``: what the API is, and the commands this user may run, each linking to its help."""
    principal = await authenticate(request)
    specs = [spec for spec in _engine_specs(request.app[CONFIG].current.engine.kind)
             if principal.grants.may_run(spec)]
    if _wants(request, "json") or _wants(request, "xml"):
        return answer(request, {"introduction": _INTRODUCTION, "commands": [
            {"name": s.name, "target": s.target.value, "help": f"/api/help/command/{s.name}"} for s in specs]})
    items = "".join(f'<li><a href="/api/help/command/{escape(s.name)}">{escape(s.name)}</a> '
                    f"({escape(s.target.value)})</li>\n" for s in specs)
    return _html_page("Commands", f"<h1>Using the command API</h1>\n<p>{escape(_INTRODUCTION)}</p>\n"
                                  f"<h2>Commands you may run</h2>\n<ul>\n{items}</ul>\n")


async def help_command_view(request: web.Request) -> web.Response:
    """``GET /api/help/command/<COMMAND>``: its parameters (required or not, types, defaults) and a curl example."""
    principal = await authenticate(request)
    spec = find_command(request.match_info["command"].upper(), request.app[CONFIG].current.engine.kind)
    template = command_template(spec)
    example = _help_example(spec)
    permitted = principal.grants.may_run(spec)
    if _wants(request, "json") or _wants(request, "xml"):
        return answer(request, {**template, "permitted": permitted, "example": example})
    rows = "".join(
        f"<tr><td>{escape(str(row['name']))}{' (required)' if row['required'] else ''}</td>"
        f"<td>{escape(str(row['type']))}</td><td>{escape(str(row.get('default', '')))}</td>"
        f"<td>{escape(str(row.get('description', '')))}</td></tr>\n"
        for row in template["parameters"])  # type: ignore[attr-defined]
    engines = ", ".join(_engines(spec))
    may = "You may run it." if permitted else "You may not run it (see the bridge's [[users]] commands)."
    table = ("<table>\n<thead><tr><th>Property (required)</th><th>Type</th><th>Default</th><th>Description</th>"
             f"</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n") if rows else "<p>It takes no parameters.</p>\n"
    body = (f"<h1>{escape(spec.name)}</h1>\n<p>Target: {escape(spec.target.value)}. Engines: {escape(engines)}. "
            f"{escape(may)}</p>\n"
            f"<h2>Properties of <strong>{escape(spec.name)}</strong> resources</h2>\n{table}"
            "<h2>Example usage</h2>\n<h3>cURL in terminal</h3>\n<h4>POST</h4>\n<h5>Request</h5>\n"
            f"<pre>{escape(str(example['curl']))}</pre>\n<h5>Response</h5>\n"
            f"<pre>{escape(json.dumps(example['response']))}</pre>\n"
            '<p><a href="/api/help/command">All commands</a></p>\n')
    return _html_page(spec.name, body)


def _html_page(title: str, body: str) -> web.Response:
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{escape(title)} - '
            f"naemon-bridge</title></head>\n<body>\n{body}</body>\n</html>\n")
    return web.Response(text=page, content_type="text/html", charset="utf-8")


# -- OpenAPI -------------------------------------------------------------------------------------------------------

# Not a documented query parameter: the server reads no other, so a schema of it would only say "a string".
_FORMAT = ("Every answer of these endpoints comes as XML with ?format=xml (<?xml …?> on line 1, then <response> "
           "holding the answer's members as elements, a list's members as <item>); anything else or nothing: JSON.")
# (minimum applies to the number, pattern to the text; nested anyOfs here made schemathesis's generator crash)
# A form holds only text, however a client spells it: no ignored key's value is refused there, repeated or not.
_FORM_EXTRA: Schema = {"description": "a parameter the command does not take is ignored and named in the warnings"}
_HOURS_SCHEMA: Schema = {"type": ["number", "string"], "minimum": 0, "pattern": r"^\s*\+?(\d+(\.\d*)?|\.\d+)\s*$"}


def _request_schema(spec: CommandSpec, engine: EngineKind) -> Schema:
    """The body of ``POST /api/command/<COMMAND>``, from op5's template of the command. A parameter that is not
    required may also be null or ``""`` (both mean "not given": the default applies)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    kinds = {param.name: param for param in parameters(spec)}
    for row in command_template(spec)["parameters"]:  # type: ignore[attr-defined]
        name = row["name"]
        param = kinds.get(name)
        if row["type"] == "hours":
            schema = dict(_HOURS_SCHEMA)
        elif param is None:  # perf_data: op5's own, appended to the output
            schema = {"type": ["string", "number"], "pattern": r"^[^\x00]*$"}
        else:
            schema = param_schema(spec, param.type, param.last, engine)
        if row["required"]:
            required.append(name)
        else:
            notes = " ".join(word for word in (schema.pop("description", ""), row.get("description", ""),
                                                 f"(default: {row['default']})" if "default" in row else "") if word)
            schema = {"anyOf": [schema, {"type": "null"}, {"const": ""}], **({"description": notes} if notes
                                                                              else {})}
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": {
        "type": ["string", "number", "boolean", "null"],
        "description": "a parameter the command does not take is ignored, as op5 ignores it, and named in the "
                       "answer's warnings (a list or an object there is refused)"}}


_OP5_ERRORS = (400, 401, 413, 429, 503)
_MEANINGS = {401: "missing or wrong credentials, or no right to this command (op5 answers 401 for both)"}


def _op5_command(spec: CommandSpec, engine: EngineKind) -> dict[str, Schema]:
    schema = _request_schema(spec, engine)
    ok = json_body(ref("Submitted"), "written to the engine's pipe or the spool")
    post = {"operationId": spec.name.lower(), "tags": ["op5"], "summary": f"{spec.name} (target: {spec.target.value})",
            "security": SECURE,
            "requestBody": {"required": bool(schema["required"]), "content": {
                "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": {
                    **schema, "additionalProperties": _FORM_EXTRA}}}},
            "responses": {"200": ok, **errors(_OP5_ERRORS, "Error", _MEANINGS)}}
    get = {"operationId": f"{spec.name.lower()}_template", "tags": ["op5"],
           "summary": f"{spec.name}: its parameters, types, which are required, and the defaults",
           "security": SECURE,
           "responses": {"200": json_body(ref("Template"), "the parameter template"),
                         **errors((401, 429), "Error")}}
    return {"get": get, "post": post}



def openapi_part(engine: EngineKind) -> ApiDescription:
    paths: dict[str, Any] = {}
    for spec in _engine_specs(engine):
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
    html = {"200": {"description": "an HTML page, or JSON / XML", "content": {
        "text/html": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}},
        "application/xml": {"schema": {"type": "string"}}}}}
    paths["/api/help/command"] = {"get": {
        "operationId": "help_commands", "tags": ["op5"], "security": SECURE,
        "summary": "Help: the API and the commands this user may run (HTML; ?format=json or xml)",
        "responses": {**html, **errors((401, 429), "Error")}}}
    paths["/api/help/command/{command}"] = {"get": {
        "operationId": "help_command", "tags": ["op5"], "security": SECURE,
        "summary": "Help on one command: parameters, types, defaults, a curl example (HTML; ?format=json or xml)",
        "parameters": [{"name": "command", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {**html, **errors((401, 404, 429), "Error")}}}
    strings = {"type": "array", "items": {"type": "string"}}
    schemas = {
        "Submitted": {"type": "object", "required": ["result"], "properties": {
            "result": {"type": "string"}, "warnings": {"type": "array", "items": {"type": "string"},
            "description": "only when the request held parameters the command does not take: each one ignored"}}},
        "Error": {"type": "object", "required": ["error", "full_error"], "properties": {
            "error": {"type": "string"}, "full_error": {"type": "string"}}},
        "Template": {"type": "object", "required": ["command", "parameters"], "properties": {
            "command": {"type": "string"}, "target": {"type": "string"}, "engines": strings,
            "permitted": {"type": "boolean"}, "parameters": {"type": "array", "items": {
                "type": "object", "required": ["name", "type", "required"], "properties": {
                    "name": {"type": "string"}, "type": {"type": "string"}, "description": {"type": "string"},
                    "required": {"type": "boolean"}, "default": {"type": "string"}}}}}},
        "BatchResult": {"type": "object", "required": ["host_name", "status_code"], "properties": {
            "host_name": NAME,
            "service_description": {"anyOf": [NAME, {"type": "null"}], "description": "absent/null: a host"},
            "status_code": counting(0, 3, rf"\+?0*[0-3]|{ZERO}", "a service state 0-3, or for a host 0-2"),
            "plugin_output": {"anyOf": [ARG_SCHEMAS[ArgType.OUTPUT], {"type": "null"}]},
            "timestamp": {"anyOf": [ARG_SCHEMAS[ArgType.TIMESTAMP], {"type": "null"}]}},
            "additionalProperties": False},
    }
    for operations in paths.values():  # ?format=xml: every answer, errors included, can come as XML
        for operation in operations.values():
            for answer in operation["responses"].values():
                content = answer.get("content", {})
                if "application/json" in content:
                    content.setdefault("application/xml", {"schema": {"type": "string"}})
    return ApiDescription(paths, schemas, [{"name": "op5", "description": f"op5 Monitor's command API. {_FORMAT}"}])


def _claims(path: str) -> bool:
    return path.startswith("/api/")


_COMMAND = Route("POST", "/api/command/{command}", command_view)
_RESULTS = Route("POST", "/api/results", results_view)

DIALECT = Dialect(
    name="op5",
    routes=(Route("GET", "/api/command", list_view), Route("GET", "/api/command/{command}", template_view),
            _COMMAND, _RESULTS, Route("GET", "/api/help/command", help_index_view),
            Route("GET", "/api/help/command/{command}", help_command_view)),
    render_error=render_error,
    claims=_claims,
    openapi=openapi_part,
    error_schema="Error",
    internal_error=orjson.dumps({"error": "Internal Server Error",
                                 "full_error": "internal error: see the bridge's log"}),
    worker_routes=(_COMMAND, _RESULTS),
)
