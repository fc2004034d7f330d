"""Nagios's NRDP (docs/research/nrdp-icinga.md): ``GET``/``POST /nrdp/`` with ``token`` and ``cmd`` —
``submitcheck`` (check results as XML or JSON), ``submitcmd`` (a raw external command, parsed through the one
command table) and ``hello``. Answers in NRDP's shapes and texts, with HTTP 200 even for errors, as NRDP answers:
``send_nrdp.sh`` runs ``curl -f`` and reports any other status as "could not connect".

XML comes from untrusted senders: it is parsed with defusedxml, which refuses entity declarations and external
references (an XML bomb is ``BAD XML``, not a full memory).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import orjson
from aiohttp import web
from defusedxml import DefusedXmlException

from bridge.core.command_table import COMMANDS
from bridge.core.commands import command_from_params, command_from_text, parse_timestamp
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
from bridge.http.auth import client_address
from bridge.http.bodies import FORM_TYPES, form_fields, read_body
from bridge.http.dialects import ApiDescription, Dialect, Route
from bridge.http.jsonio import DocumentRefused, loads
from bridge.http.keys import AUTH, CLOCK, CONFIG
from bridge.http.submission import admit, submit_commands

log = logging.getLogger("naemon_bridge.nrdp")

PRODUCT, VERSION = "nrdp", "2.0.5"  # what NRDP's hello names (server/includes/constants.inc.php)

# NRDP's error texts (server/includes/constants.inc.php), and the bridge's own for what NRDP never checks.
NO_TOKEN, BAD_TOKEN, DENIED_TOKEN = "NO TOKEN", "BAD TOKEN", "DENIED TOKEN"
NO_COMMAND, BAD_XML, BAD_JSON, BAD_WRITE = "NO COMMAND", "BAD XML", "BAD JSON", "WRITE ERROR"
NO_HANDLER = "No command specified or request handler"  # NRDP's text for a cmd no plugin handles
BAD_DATA, UNKNOWN_OBJECT, BAD_COMMAND = "BAD DATA", "UNKNOWN OBJECT", "BAD COMMAND"
REFUSED, THROTTLED, BAD_REQUEST = "REFUSED BY ENGINE", "TOO MANY BAD TOKENS", "BAD REQUEST"


class NrdpError(BridgeError):
    """A refusal with NRDP's own message (``BAD XML``…) and the detail NRDP puts in ``information``."""

    def __init__(self, message: str, information: str = "") -> None:
        super().__init__(f"{message}: {information}" if information else message)
        self.message, self.information = message, information


# -- answers -------------------------------------------------------------------------------------------------------

def _xml_text(value: object) -> str:
    # NRDP's xmlentities(), and \xNN for what XML 1.0 cannot carry (an echoed value may hold it)
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace('"', "&quot;").replace("'", "&apos;")
    return "".join(c if c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                   or c >= "\U00010000" else f"\\x{ord(c):02x}" for c in text)


def _xml(data: Mapping[str, Any], depth: int = 0) -> str:
    """NRDP's generate_xml_from_arr: four spaces per level, nested elements on their own lines."""
    indent = " " * (4 * depth)
    out = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.append(f"{indent}<{key}>\n{_xml(value, depth + 1)}{indent}</{key}>\n")
        else:
            out.append(f"{indent}<{key}>{_xml_text(value)}</{key}>\n")
    return "".join(out)


def wants_json(params: Mapping[str, str]) -> bool:
    """NRDP's output_type(): ``output_type`` if given, else XML when XML data came, JSON when JSON data came,
    else XML."""
    chosen = params.get("output_type", "").strip().lower()
    if chosen:
        return chosen in ("json", "type_json")
    return not _xml_data(params) and bool(_json_data(params))


def nrdp_answer(params: Mapping[str, str], data: Mapping[str, Any], *, status: int = 200) -> web.Response:
    if wants_json(params):
        return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + _xml(data)
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


def _xml_data(params: Mapping[str, str]) -> str:
    # NRDP's grab_xml(): the last of XMLDATA, xmldata, xml that is given wins
    return params.get("xml") or params.get("xmldata") or params.get("XMLDATA") or ""


def _json_data(params: Mapping[str, str]) -> str:
    return params.get("json") or params.get("jsondata") or params.get("JSONDATA") or ""


# -- the request ---------------------------------------------------------------------------------------------------

async def request_params(request: web.Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The query string, then a form body over it (PHP's $_GET, then $_POST), as NRDP's grab_request_vars reads
    them; and the lists PHP makes of a repeated ``name[]`` (NRDP's ``command[]``), by name without the ``[]``."""
    params: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in request.query.items():
        _put(params, lists, key, value)
    body = await read_body(request)
    if body.strip():
        if request.content_type not in FORM_TYPES and request.content_type != "application/octet-stream":
            raise NrdpError(BAD_REQUEST, f"the body must be form fields (application/x-www-form-urlencoded), "
                                         f"not {request.content_type}")
        content_type = request.headers.get("Content-Type", "application/x-www-form-urlencoded")
        if request.content_type == "application/octet-stream":
            content_type = "application/x-www-form-urlencoded"
        for key, value in _form_pairs(content_type, body):
            _put(params, lists, key, value)
    return params, lists


def _put(params: dict[str, str], lists: dict[str, list[str]], key: str, value: str) -> None:
    if key.endswith("[]"):
        lists.setdefault(key[:-2], []).append(value)
    else:
        params[key] = value


def _form_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    lists = b"[]" in body or b"%5B%5D" in body.upper()
    if lists and content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        # piece by piece: a repeated command[] is a list, and form_fields keeps only the last of a name
        return [pair for piece in body.split(b"&") if piece for pair in form_fields(content_type, piece).items()]
    return list(form_fields(content_type, body).items())


async def nrdp_view(request: web.Request) -> web.Response:
    params, lists = await request_params(request)
    request[_PARAMS] = params
    cmd = params.get("cmd", "").strip().lower()
    if cmd == "hello":  # before the token, as NRDP answers it
        return nrdp_answer(params, {"response": {"status": 0, "message": "OK", "product": PRODUCT,
                                                 "version": VERSION}})
    token = params.get("token", "")
    if not token:
        raise NrdpError(NO_TOKEN)
    try:
        principal = request.app[AUTH].authenticate_token(token, client_address(request))
    except NotAuthenticated:
        raise NrdpError(BAD_TOKEN) from None
    now = int(request.app[CLOCK]())
    if cmd == "submitcheck":
        commands = check_results(params, now=now, author=principal.name)
        done = {"status": 0, "message": "OK", "meta": {"output": f"{len(commands)} checks processed"}}
    elif cmd == "submitcmd":
        engine = request.app[CONFIG].current.engine.kind
        texts = [text for text in lists.get("command", [params.get("command", "")]) if text.strip()]
        if not texts:
            raise NrdpError(NO_COMMAND)
        commands = [command_from_text(text, engine, now=now, author=principal.name) for text in texts]
        done = {"status": 0, "message": "OK"}
    else:
        raise NrdpError(NO_HANDLER, f"cmd must be submitcheck, submitcmd or hello, not {cmd!r}" if cmd else "")
    if commands:
        await admit(request.app, principal, commands)
        await submit_commands(request.app, commands)
    return nrdp_answer(params, {"result": done})


_PARAMS = web.RequestKey("nrdp_params", dict)


# -- check results -------------------------------------------------------------------------------------------------

def check_results(params: Mapping[str, str], *, now: int, author: str) -> list[Command]:
    """Every check result of a ``submitcheck``, validated all or nothing (XML unless only JSON came)."""
    if wants_json(params) and not _xml_data(params):
        items = _json_results(_json_data(params))
    else:
        items = _xml_results(_xml_data(params))
    commands = []
    for index, item in enumerate(items):
        try:
            commands.append(_result(item, now=now, author=author))
        except InvalidInput as exc:
            raise InvalidInput(exc.field, f"checkresult {index + 1}: {exc.message}") from None
    return commands


Fields = dict[str, str]


def _xml_results(text: str) -> list[Fields]:
    if not text.strip():
        raise NrdpError(BAD_XML, "no XML data (xml, XMLDATA)")
    try:
        root: Element = SafeET.fromstring(text.strip().encode("utf-8", "surrogateescape"),
                                          forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise NrdpError(BAD_XML, f"refused: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise NrdpError(BAD_XML, str(exc)) from None
    items = []
    for result in root.findall("checkresult"):  # simplexml's $data->checkresult: the root's children
        fields = {"type": result.get("type", "host")}
        for name in ("hostname", "servicename", "state", "output", "time"):
            child = result.find(name)
            if child is not None:
                fields[name] = "".join(child.itertext())
        items.append(fields)
    return items


def _json_results(text: str) -> list[Fields]:
    try:
        data = loads(text.encode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeDecodeError, DocumentRefused) as exc:
        raise NrdpError(BAD_JSON, str(exc)) from None
    if not data:  # PHP's json_decode(...) == false: also {} and []
        raise NrdpError(BAD_JSON, "no JSON data (json, JSONDATA)")
    results = data.get("checkresults") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise NrdpError(BAD_JSON, 'the JSON must be {"checkresults": [...]}')
    items = []
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise NrdpError(BAD_JSON, f"checkresults[{index}] must be an object")
        attributes = result.get("checkresult")
        fields: Fields = {"type": str(attributes.get("type", "host")) if isinstance(attributes, dict) else "host"}
        for name in ("hostname", "servicename", "state", "output", "time"):
            value = result.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise NrdpError(BAD_JSON, f"checkresults[{index}].{name} must be a string or a number")
            fields[name] = str(value)
        items.append(fields)
    return items


def _result(fields: Fields, *, now: int, author: str) -> Command:
    stamp = now
    if fields.get("time", "").strip() not in ("", "0"):  # NRDP: intval(time), 0 meaning none
        stamp = parse_timestamp("time", fields["time"].strip(), now)
    output = fields.get("output", "")
    if fields["type"].strip().lower() == "service":
        spec = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"]
        params = {"host_name": fields.get("hostname", ""), "service_description": fields.get("servicename", ""),
                  "status_code": fields.get("state", "").strip(), "plugin_output": output}
    else:
        spec = COMMANDS["PROCESS_HOST_CHECK_RESULT"]
        params = {"host_name": fields.get("hostname", ""), "status_code": fields.get("state", "").strip(),
                  "plugin_output": output}
    return command_from_params(spec, params, now=stamp, author=author)


# -- errors --------------------------------------------------------------------------------------------------------

def render_error(request: web.Request, status: int, message: str, error: BridgeError | None) -> web.Response:
    """NRDP's handle_api_error: ``<result><status>-1</status><message>…`` (``information`` for the detail), with
    HTTP 200 for every refusal NRDP itself makes or could make; only the HTTP layer's own failures (404, 405, 413,
    a body that never came) keep their status."""
    params = request.get(_PARAMS, {})
    information = message
    if isinstance(error, NrdpError):
        text, information = error.message, error.information
    elif isinstance(error, UnknownObject):
        text = UNKNOWN_OBJECT
    elif isinstance(error, InvalidInput):
        text = BAD_DATA
    elif isinstance(error, NotPermitted):
        text = DENIED_TOKEN
    elif isinstance(error, Throttled):
        text = THROTTLED
    elif isinstance(error, UnknownCommand):
        text = BAD_COMMAND
    elif isinstance(error, EngineRefused):
        text = REFUSED
    elif isinstance(error, EngineUnavailable):
        text = BAD_WRITE
    elif isinstance(error, BadRequestBody):
        text, status = BAD_REQUEST, 200 if error.status == 400 else error.status
    else:
        text = BAD_REQUEST
    if isinstance(error, NotAuthenticated | NrdpError) and text in (NO_TOKEN, BAD_TOKEN):
        log.debug("NRDP %s from %s", text, request.remote)
    body: dict[str, Any] = {"status": -1, "message": text}
    if information:
        body["information"] = information
    return nrdp_answer(params, {"result": body}, status=status or 200)


# -- OpenAPI -------------------------------------------------------------------------------------------------------

_FIELDS: dict[str, Any] = {
    "token": {"type": "string", "description": "a [[users]] token"},
    "cmd": {"type": "string", "description": "submitcheck, submitcmd or hello"},
    "XMLDATA": {"type": "string", "description": "submitcheck: <checkresults><checkresult type=…> (also xml=)"},
    "JSONDATA": {"type": "string", "description": 'submitcheck: {"checkresults": [...]} (also json=)'},
    "command": {"type": "string", "description": "submitcmd: one external command, NAME;arg;…"},
    "output_type": {"type": "string", "description": "json: answer JSON (else as the data came; XML by default)"},
}


def openapi_part(engine: EngineKind) -> ApiDescription:
    answer = {"description": "NRDP's answer: <result><status>0</status><message>OK</message>… or status -1 and "
                             "NRDP's error message (HTTP 200 for both, as NRDP answers)",
              "content": {"text/xml": {"schema": {"type": "string"}},
                          "application/json": {"schema": {"type": "object"}}}}
    form = {"type": "object", "properties": _FIELDS}
    post = {"operationId": "nrdp", "tags": ["nrdp"], "summary": "NRDP: submitcheck, submitcmd, hello",
            "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": form}}},
            "responses": {"200": answer}}
    get = {"operationId": "nrdp_get", "tags": ["nrdp"], "summary": "NRDP with the parameters in the query string "
                                                                   "(send_nrdp.py)",
           "parameters": [{"name": name, "in": "query", "required": False, "schema": schema}
                          for name, schema in _FIELDS.items()],
           "responses": {"200": answer}}
    result = {"type": "object", "properties": {"result": {"type": "object", "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"}, "information": {"type": "string"}}}}}
    return ApiDescription({"/nrdp/": {"get": get, "post": post}}, {"NrdpResult": result}, [{
        "name": "nrdp", "description": "Nagios's NRDP: token= (a [[users]] token), cmd=submitcheck with XML or "
                                       "JSON check results, cmd=submitcmd with one external command"}])


def _claims(path: str) -> bool:
    return path == "/nrdp" or path.startswith("/nrdp/")


_ROUTES = tuple(Route(method, path, nrdp_view) for path in ("/nrdp", "/nrdp/", "/nrdp//")
                for method in ("GET", "POST"))

DIALECT = Dialect(
    name="nrdp",
    routes=_ROUTES,
    render_error=render_error,
    claims=_claims,
    openapi=openapi_part,
    error_schema="NrdpResult",
    internal_error=orjson.dumps({"result": {"status": -1, "message": "INTERNAL ERROR",
                                            "information": "see the bridge's log"}}),
)
