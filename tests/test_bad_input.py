"""Bodies that once answered 500 (issue 15): each is now a 4xx — or Alignak's ``_status: ERR`` — in its API's
error shape, naming the problem, and nothing reaches the engine's pipe. The real app through aiohttp's test
client with a real FIFO; the body decoders alone under hypothesis."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote_from_bytes, urlencode

import pytest
from aiohttp import FormData, encode_basic_auth, web
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.config.model import Config, EngineConfig, SpoolConfig, User
from bridge.core.errors import BadRequestBody, InvalidInput
from bridge.core.values import EngineKind
from bridge.daemon.reload import apply_config
from bridge.http.app import make_app
from bridge.http.bodies import form_fields
from bridge.http.dialects import answered
from bridge.http.jsonio import DocumentRefused, json_answer, loads
from bridge.http.keys import CONFIG
from bridge.http.metrics import Metrics
from bridge.intake import DIALECTS, alignak, op5
from tests.conftest import FifoReader, collect

NOW = 1_700_000_000
OP5 = {"Authorization": encode_basic_auth("alice", "secret")}
ALIGNAK = {"Authorization": encode_basic_auth("tok-123", "")}
JSON = {"Content-Type": "application/json"}
HOST_RESULT = "/api/command/PROCESS_HOST_CHECK_RESULT"
DIGITS = "1" + "0" * 5000  # int() converts at most 4,300 digits


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    (tmp_path / "objects.cache").write_text("define host {\n\thost_name\tweb1\n\t}\n")
    config = Config(
        engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo, objects_cache=tmp_path / "objects.cache"),
        spool=SpoolConfig(directory=tmp_path / "spool"),
        users=(User("alice", password="secret"), User("readers", token="tok-123")))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def post(client: TestClient, path: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[
        int, dict]:
    response = await client.request(method, path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
    assert response.content_type == "application/json", await response.text()
    return response.status, json.loads(await response.read())  # strict UTF-8: what any client's decoder does


OP5_CASES = [
    ("a number of 5,001 digits", b'{"host_name": "web1", "status_code": %s}' % DIGITS.encode(), JSON,
     400, "more than 4300 digits"),
    ("a string of 5,001 digits", b'{"host_name": "web1", "status_code": "%s"}' % DIGITS.encode(), JSON,
     400, "not one of 5001 digits"),
    ("nesting past the parser's limit", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "nested deeper than 64"),
    ("nesting the parser takes, in a value", b'{"host_name": "web1", "status_code": %s}'
     % (b"[" * 1000 + b"]" * 1000), JSON, 400, "nested deeper than 64"),
    ("NaN beside deep nesting", b'{"status_code": NaN, "x": %s}' % (b"[" * 2000 + b"]" * 2000), JSON,
     400, "nested deeper than 64"),
    ("a lone surrogate in a parameter name", b'{"\\udc80x": 1}', JSON, 400, "(ignored: '\\udc80x')"),
    ("multipart without a boundary", b"host_name=web1", {"Content-Type": "multipart/form-data"}, 400,
     "needs a boundary"),
    ("multipart with a boundary the body lacks", b"--other\r\n\r\nx\r\n--other--\r\n",
     {"Content-Type": "multipart/form-data; boundary=zz"}, 400, "no part starting with --zz"),
    ("a form in a charset nobody knows", b"host_name=web1&status_code=0",
     {"Content-Type": "application/x-www-form-urlencoded; charset=nonexistent"}, 415, "'nonexistent' is unknown"),
    ("a form labelled UTF-16", b"host_name=web1&status_code=0",
     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-16"}, 415, "'utf-16' cannot label a form"),
    ("a form declared UTF-8 that is not", b"host_name=web1&status_code=0&plugin_output=caf\xe9",
     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, 400, "plugin_output: is not valid utf-8"),
    ("gzip that is not gzip", b'{"host_name": "web1", "status_code": 0}', {**JSON, "Content-Encoding": "gzip"},
     400, "not valid gzip data"),
    ("deflate that is not deflate", b'{"host_name": "web1", "status_code": 0}',
     {**JSON, "Content-Encoding": "deflate"}, 400, "not valid deflate data"),
]


@pytest.mark.parametrize(("case", "body", "headers", "status", "named"), OP5_CASES, ids=[c[0] for c in OP5_CASES])
async def test_op5_bodies_that_were_500_are_4xx_naming_the_problem(client: TestClient, reader: FifoReader,
                                                                   case: str, body: bytes, headers: dict[str, str],
                                                                   status: int, named: str) -> None:
    answer_status, answer = await post(client, HOST_RESULT, body, {**OP5, **headers})
    assert answer_status == status, answer
    assert set(answer) == {"error", "full_error"}
    assert named in answer["full_error"]
    assert reader.read_lines() == []


async def test_a_batch_with_a_number_too_long_is_refused_whole(client: TestClient, reader: FifoReader) -> None:
    body = b'[{"host_name": "web1", "status_code": 0}, {"host_name": "web1", "status_code": 0, "timestamp": %s}]' \
        % DIGITS.encode()
    status, answer = await post(client, "/api/results", body, {**OP5, **JSON})
    assert (status, answer["error"]) == (400, "Invalid request body")
    assert "more than 4300 digits" in answer["full_error"]
    assert reader.read_lines() == []


ALIGNAK_CASES = [
    ("nesting past the parser's limit", "/host/web1", b'{"a": ' * 3000 + b"1" + b"}" * 3000, 400,
     "nested deeper than 64"),
    ("a lone surrogate as the state", "/host/web1", b'{"livestate": {"state": "\\udfff"}}', 200,
     "and not '\ufffd'"),
    ("a lone surrogate as the command", "/command", b'{"command": "\\ud800"}', 200, "unknown command '\ufffd'"),
    ("a number of 5,001 digits", "/host/web1", b'{"livestate": {"state": "up", "timestamp": %s}}'
     % DIGITS.encode(), 400, "more than 4300 digits"),
    ("a command's timestamp in superscript digits", "/command",
     '{"command": "PROCESS_HOST_CHECK_RESULT", "host": "web1", "parameters": "0;x", "timestamp": "²"}'.encode(),
     200, "Timestamp must be an integer value"),
    ("a command's timestamp of 5,001 digits", "/command",
     b'{"command": "PROCESS_HOST_CHECK_RESULT", "host": "web1", "parameters": "0;x", "timestamp": "%s"}'
     % DIGITS.encode(), 200, "Timestamp must be an integer value"),
]


@pytest.mark.parametrize(("case", "path", "body", "status", "named"), ALIGNAK_CASES,
                         ids=[c[0] for c in ALIGNAK_CASES])
async def test_alignak_bodies_that_were_500_are_errors_naming_the_problem(client: TestClient, reader: FifoReader,
                                                                          case: str, path: str, body: bytes,
                                                                          status: int, named: str) -> None:
    """Alignak answers bad content with HTTP 200 and ``_status: ERR``, unreadable bodies with 400."""
    method = "PATCH" if path.startswith("/host") else "POST"
    answer_status, answer = await post(client, path, body, {**ALIGNAK, **JSON}, method)
    assert (answer_status, answer["_status"]) == (status, "ERR"), answer
    assert named in json.dumps(answer, ensure_ascii=False)
    assert reader.read_lines() == []


@pytest.mark.parametrize("stamp", [b"1e400", b"-Infinity", b'"%s"' % DIGITS.encode(), b'"soon"', b'"12.5"'],
                         ids=["beyond a float", "minus infinity", "a string beyond a float", "a word", "a fraction"])
async def test_alignak_livestate_times_int_refuses_are_now(client: TestClient, reader: FifoReader,
                                                           stamp: bytes) -> None:
    """alignak-module-ws takes ``int(timestamp)`` and uses now when that fails; the bridge does too (and for a time
    which a float cannot hold; a time outside 1970-2100 is refused)."""
    body = b'{"livestate": {"state": "up", "output": "x", "timestamp": %s}}' % stamp
    answer_status, answer = await post(client, "/host/web1", body, {**ALIGNAK, **JSON}, "PATCH")
    assert (answer_status, answer["_status"]) == (200, "OK"), answer
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;x".encode()]


async def test_alignak_gzip_that_is_not_gzip(client: TestClient, reader: FifoReader) -> None:
    status, answer = await post(client, "/host/web1", b'{"livestate": {"state": "up"}}',
                                {**ALIGNAK, **JSON, "Content-Encoding": "gzip"}, "PATCH")
    assert status == 400
    assert answer == {"_status": "ERR", "_issues": ["the body cannot be read: it is not valid gzip data, as its "
                                                    "Content-Encoding says it is"]}
    assert reader.read_lines() == []


async def test_real_gzip_still_works(client: TestClient, reader: FifoReader) -> None:
    body = gzip.compress(b'{"host_name": "web1", "status_code": 1, "plugin_output": "zipped"}')
    status, answer = await post(client, HOST_RESULT, body, {**OP5, **JSON, "Content-Encoding": "gzip"})
    assert status == 200, answer
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;1;zipped".encode()]


@pytest.mark.parametrize(("body", "content_type"), [
    (b"host_name=web1&status_code=1&plugin_output=caf\xe9", "application/x-www-form-urlencoded"),  # raw Latin-1
    (b"host_name=web1&status_code=1&plugin_output=caf%E9", "application/x-www-form-urlencoded"),
    (b"host_name=web1&status_code=1&plugin_output=caf%C3%A9", "application/x-www-form-urlencoded"),
    (b"host_name=web1&status_code=1&plugin_output=caf%E9", "application/x-www-form-urlencoded; charset=latin-1"),
    (b"host_name=web1&status_code=1&plugin_output=caf\xe9", "application/x-www-form-urlencoded; charset=cp1252"),
])
async def test_latin1_forms_arrive_as_utf8(client: TestClient, reader: FifoReader, body: bytes,
                                           content_type: str) -> None:
    """A form value that is not UTF-8 is read as Latin-1 (op5 took such bytes); the engine gets UTF-8."""
    status, answer = await post(client, HOST_RESULT, body, {**OP5, "Content-Type": content_type})
    assert status == 200, answer
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;1;café".encode()]


async def test_multipart_forms_work(client: TestClient, reader: FifoReader) -> None:
    """``curl -F``: multipart/form-data (it answered 500 whatever the body: its bytes had been read already)."""
    form = FormData()
    form.add_field("host_name", "web1")
    form.add_field("status_code", "2")
    form.add_field("plugin_output", "disk full\nlong output")
    form.add_field("attachment", b"\x00\x01", filename="ignored.bin")
    response = await client.post(HOST_RESULT, data=form, headers=OP5)
    assert response.status == 200, await response.text()
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;2;disk full\\nlong output".encode()]


async def test_a_body_that_stops_coming_is_408_within_body_timeout_which_a_reload_sets(
        client: TestClient, reader: FifoReader) -> None:
    app = client.server.app
    old = app[CONFIG].current
    assert apply_config(app, replace(old, server=replace(old.server, body_timeout=0.2))) == []  # no restart needed

    async def never_ends() -> AsyncIterator[bytes]:
        yield b'{"host_name": "web1", '
        await asyncio.Event().wait()

    response = await client.post(HOST_RESULT, data=never_ends(), headers={**OP5, **JSON})
    assert (response.status, await response.json()) == (408, {
        "error": "Invalid request body", "full_error": "the body did not arrive within 0.2 s (server.body_timeout)"})
    assert reader.read_lines() == []


async def test_an_unexpected_failure_is_the_dialects_500_logged_once(caplog: pytest.LogCaptureFixture,
                                                                    aiohttp_client) -> None:
    """The last line of defence: any bug is a 500 in the caller's dialect with one traceback in the log, and a
    message the answer cannot encode (a lone surrogate) does not make the answer fail too."""
    class Unsayable(InvalidInput):
        def __str__(self) -> str:
            raise UnicodeError("the error's own message fails")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("bug \udc80")

    async def unrenderable(request: web.Request) -> web.Response:
        raise Unsayable("status_code", "x")

    app = web.Application()
    app.router.add_post("/api/x", answered(broken, op5.DIALECT, Metrics()))
    app.router.add_post("/host/x", answered(broken, alignak.DIALECT, Metrics()))
    app.router.add_post("/api/y", answered(unrenderable, op5.DIALECT, Metrics()))
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="naemon_bridge.http"):
        op5_answer = await client.post("/api/x")
        alignak_answer = await client.post("/host/x")
        failed_rendering = await client.post("/api/y")
    op5_500 = {"error": "Internal Server Error", "full_error": "internal error: see the bridge's log"}
    assert (op5_answer.status, await op5_answer.json()) == (500, op5_500)
    assert (alignak_answer.status, await alignak_answer.json()) == (500, {"_status": "ERR",
                                                            "_issues": ["internal error: see the bridge's log"]})
    assert (failed_rendering.status, await failed_rendering.json()) == (500, op5_500)
    errors = [r for r in caplog.records if r.name == "naemon_bridge.http"]
    assert [r.exc_info[0] for r in errors if r.exc_info] == [RuntimeError, RuntimeError, UnicodeError]


def test_answers_with_lone_surrogates_are_valid_utf8_json() -> None:
    response = json_answer({"error": "Invalid parameter '\udc80x'", "list": ["\ud800", {"\udfff": 1}]})
    assert isinstance(response.body, bytes)
    assert json.loads(response.body.decode("utf-8")) == {"error": "Invalid parameter '\ufffdx'",
                                                         "list": ["\ufffd", {"\ufffd": 1}]}


# The decoders alone: whatever the bytes, only the bridge's own refusals come out.

@given(st.binary(max_size=300))
def test_json_bodies_raise_nothing_but_refusals(body: bytes) -> None:
    try:
        loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, DocumentRefused):
        pass


_CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=b",
                     "application/x-www-form-urlencoded; charset=latin-1",
                     "application/x-www-form-urlencoded; charset=utf-16", "multipart/form-data; boundary=\"b\"; "
                     "charset=rot13", "application/x-www-form-urlencoded; charset*=utf-8''%E9"]),
    st.builds(lambda kind, params: f"{kind}; {params}",
              st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data"]), st.text(max_size=40)))
_PARTS = st.lists(st.sampled_from([b"--b\r\n", b"Content-Disposition: form-data; name=\"a\"\r\n", b"\r\n", b"--b--",
                                   b"Content-Type: text/plain; charset=latin-1\r\n", b"\xe9", b"x=1&", b"%E9",
                                   b"Content-Transfer-Encoding: base64\r\n", b"name*=utf-8''%E9;", b"filename=f"]),
                  max_size=20).map(b"".join)


@given(_CONTENT_TYPES, st.one_of(st.binary(max_size=200), _PARTS))
def test_form_bodies_raise_nothing_but_refusals(content_type: str, body: bytes) -> None:
    try:
        fields = form_fields(content_type, body)
    except (BadRequestBody, InvalidInput):
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.dictionaries(_TEXT, _TEXT, max_size=5))
def test_urlencoded_utf8_forms_round_trip(fields: dict[str, str]) -> None:
    body = urlencode(fields).encode()
    assert form_fields("application/x-www-form-urlencoded", body) == fields


# (not whitespace: a form has none unencoded, and a trailing newline — curl -d @file — is dropped)
_RAW_LATIN1 = st.text(st.characters(max_codepoint=0xFF, blacklist_characters="%+&=",
                                    blacklist_categories=("Zs", "Cc")), max_size=20)


@given(st.dictionaries(_TEXT.filter(bool), _RAW_LATIN1, max_size=5))
def test_values_without_a_charset_are_utf8_or_else_latin1(fields: dict[str, str]) -> None:
    """Values sent as raw Latin-1 bytes (no percent-encoding, as a Latin-1 shell's curl -d sends them)."""
    body = b"&".join(quote_from_bytes(k.encode()).encode() + b"=" + v.encode("latin-1") for k, v in fields.items())
    decoded = form_fields("application/x-www-form-urlencoded", body)
    for name, value in fields.items():
        raw = value.encode("latin-1")
        try:
            assert decoded[name] == raw.decode()  # bytes that happen to be UTF-8 are read as UTF-8
        except UnicodeDecodeError:
            assert decoded[name] == value


@given(st.dictionaries(_TEXT.filter(lambda name: name.isprintable() and '"' not in name and "\\" not in name),
                       _TEXT, max_size=5))
@example({"<>": "", "<a>": "b"})  # the email module's unquoting strips angle brackets; found by this test
def test_multipart_forms_round_trip(fields: dict[str, str]) -> None:
    boundary = "b0undary-not-in-any-value"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v.encode()
                    + b"\r\n" for k, v in fields.items()) + f"--{boundary}--\r\n".encode()
    assert form_fields(f"multipart/form-data; boundary={boundary}", body) == fields
