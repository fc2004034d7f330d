"""A bounded schemathesis run against the daemon as a subprocess, in front of a real FIFO read as an engine
would: the OpenAPI document must match the server (every check but positive data acceptance), nothing may
answer 5xx, and every line that reaches the pipe must be a well-formed external command."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import parameters
from bridge.core.values import MAX_TIMESTAMP, EngineKind
from bridge.intake.op5 import _request_schema
from tests.conftest import start_bridge

# Positive data acceptance is the one check left out: a schema cannot say that end_time must follow start_time,
# which texts are times, or that a host result takes a state of 0 to 2, so some schema-valid requests are
# rightly refused. Alignak answers bad content with HTTP 200 and _status ERR (as Alignak does), so schema-
# violating Alignak documents are not expected to get a 4xx. NRDP answers every refusal with 200 too.
# (In schemathesis.toml: checks named on its command line would override the per-operation setting.)
SCHEMATHESIS_TOML = """\
[checks]
enabled = true
positive_data_acceptance.enabled = false

[[operations]]
include-tag = "alignak"
checks.negative_data_rejection.enabled = false

[[operations]]
include-tag = "nrdp"
checks.negative_data_rejection.enabled = false
"""
MAX_EXAMPLES = 3
LINE = re.compile(rb"\[(\d+)\] ([A-Z_]+)((?:;[^\n]*)?)")


class PipeReader:
    """The engine's side of the FIFO, read in a thread for the whole run, as the engine reads it."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.data += os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    pass

    def close(self) -> bytes:
        self._stop.set()
        self._thread.join()
        while True:  # what is left in the pipe
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.data += chunk
        os.close(self.fd)
        return bytes(self.data)


def _shape(schema: object) -> object:
    """A request schema without its descriptions and parameter names: what the fuzzer generates from."""
    if isinstance(schema, dict):
        return {key: _shape(value) for key, value in schema.items() if key != "description"}
    return [_shape(value) for value in schema] if isinstance(schema, list) else schema


def representative_operations() -> str:
    """Every operation but the op5 commands, and of those one per distinct request shape (the others take the
    same kinds of parameters, validated by the same code; the custom variables' ';' rule apart): a regex of
    operation ids."""
    seen: set[str] = set()
    chosen = []
    for spec in COMMANDS.values():
        if spec.naemon_only:
            continue
        schema = _request_schema(spec, EngineKind.NAGIOS)
        shape = json.dumps([[_shape(p) for p in schema["properties"].values()], len(schema["required"]),
                            spec.name.startswith("CHANGE_CUSTOM_")], sort_keys=True)
        if shape not in seen:
            seen.add(shape)
            chosen.append(spec.name.lower())
    commands = "|".join(chosen)
    others = "|".join(spec.name.lower() for spec in COMMANDS.values() if not spec.naemon_only)
    # the templates all look alike: one of them; anything that is not an op5 command: all
    return rf"^(?:{commands}|{chosen[0]}_template|(?!(?:{others})(?:_template)?$).*)$"


def malformed(line: bytes) -> str | None:
    """Why ``line`` is not an external command a Nagios 4 pipe may take whole, or None."""
    if b"\r" in line or b"\0" in line:
        return "a CR or NUL byte"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    match = LINE.fullmatch(line)
    if match is None:
        return "not [time] NAME;args"
    stamp, name, rest = int(match.group(1)), match.group(2).decode(), match.group(3)
    if not 0 <= stamp <= MAX_TIMESTAMP:
        return f"time {stamp} outside 1970-2100"
    spec = COMMANDS.get(name)
    if spec is None or spec.naemon_only:
        return f"{name} is not a Nagios 4 command"
    fields = rest[1:].split(b";") if rest else []
    expected = parameters(spec)
    free_last = bool(expected) and (expected[-1].type is ArgType.OUTPUT or
                                    (expected[-1].type is ArgType.STR and spec.name not in (
                                        "CHANGE_CUSTOM_HOST_VAR", "CHANGE_CUSTOM_SVC_VAR",
                                        "CHANGE_CUSTOM_CONTACT_VAR")))
    if len(fields) != len(expected) and not (free_last and len(fields) > len(expected)):
        return f"{len(fields)} fields, {name} takes {len(expected)}"
    for param, value in zip(expected, fields, strict=False):
        if param.type is ArgType.TIMESTAMP and value and not 0 <= int(value) <= MAX_TIMESTAMP:
            return f"{param.name} {value!r} outside 1970-2100"
        if param.type in (ArgType.HOST, ArgType.SERVICE) and not value and not param.optional:
            return f"empty {param.name}"
    return None


def schemathesis_command() -> list[str]:
    if shutil.which("schemathesis") is None:
        if os.environ.get("CI"):
            pytest.fail("schemathesis is not installed: .ci/run installs the test extras")
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    return [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()"]


def test_schemathesis_finds_the_server_as_documented_and_nothing_malformed_reaches_the_pipe(tmp_path: Path) -> None:
    command = schemathesis_command()
    fifo = tmp_path / "engine.cmd"
    os.mkfifo(fifo, 0o660)
    pipe = PipeReader(fifo)
    # Every command granted by name (process and contact commands need that), and logins never throttled:
    # schemathesis tries wrong credentials on purpose.
    names = ", ".join(f'"{name}"' for name in COMMANDS)
    config = tmp_path / "bridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\n[engine]\nkind = "nagios"\ncommand_file = "{fifo}"\n'
                      f'[spool]\ndirectory = "{tmp_path / "spool"}"\n'
                      "[auth]\nmax_failures = 1000000\nmax_address_failures = 1000000\n"
                      f'[[users]]\nname = "fuzz"\npassword = "fuzz-pw"\ncommands = [{names}]\n')
    (tmp_path / "schemathesis.toml").write_text(SCHEMATHESIS_TOML)
    bridge = start_bridge(config)
    try:
        url = bridge.wait_listening()
        document = tmp_path / "openapi.json"
        document.write_text(json.dumps(json_bodies_only(json.loads(urllib.request.urlopen(
            f"{url}/api/openapi.json", timeout=30).read()))))
        run = subprocess.run(
            [*command, "--config-file", str(tmp_path / "schemathesis.toml"), "--no-color", "run",
             str(document), "--url", url, "--auth", "fuzz:fuzz-pw", "--phases", "coverage,fuzzing",
             "--max-examples", str(MAX_EXAMPLES), "--workers", "2", "--seed", "20261202",
             "--generation-database", "none",
             "--include-operation-id-regex", representative_operations()],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    finally:
        status = bridge.stop()
        data = pipe.close()
    assert status == 0, bridge.log_text()[-5000:]
    assert "unexpected error" not in bridge.log_text(), bridge.log_text()[-5000:]
    assert data.endswith(b"\n"), data[-300:]  # no line left unfinished
    lines = data[:-1].split(b"\n")
    problems = [(why, line[:300]) for line in lines if (why := malformed(line)) is not None]
    assert problems == [], problems[:20]
    assert len(lines) > 200, f"only {len(lines)} lines reached the pipe: the run exercised too little"


def json_bodies_only(document: dict) -> dict:
    """The served document, fuzzed with JSON bodies only. A form's ignored keys take any value (a form is text),
    and a schema that says "anything" sends the generator down a recursive path that trips a CPython 3.11 bug in
    ast.parse; tests/test_bad_input.py drives the form decoder itself."""
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("requestBody", {}).get("content", {}).pop("application/x-www-form-urlencoded", None)
    return document


@pytest.mark.parametrize("line,why", [
    (b"[1700000000] PROCESS_HOST_CHECK_RESULT;web1;0;up", None),
    (b"[1700000000] ADD_HOST_COMMENT;web1;1;ops;a; comment; with semicolons", None),
    (b"[1700000000] DISABLE_NOTIFICATIONS", None),
    (b"[1700000000] PROCESS_HOST_CHECK_RESULT;web1;0;up\r", "a CR or NUL byte"),
    (b"PROCESS_HOST_CHECK_RESULT;web1;0;up", "not [time] NAME;args"),
    (b"[1700000000] NO_SUCH_COMMAND;x", "NO_SUCH_COMMAND is not a Nagios 4 command"),
    (b"[1700000000] LOG;x", "LOG is not a Nagios 4 command"),
    (b"[1700000000] ENABLE_HOST_CHECK;web1;extra", "2 fields, ENABLE_HOST_CHECK takes 1"),
    (b"[1700000000] CHANGE_CUSTOM_HOST_VAR;web1;VAR;a;b", "4 fields, CHANGE_CUSTOM_HOST_VAR takes 3"),
    (b"[99999999999] ENABLE_HOST_CHECK;web1", "time 99999999999 outside 1970-2100"),
    (b"[1700000000] SCHEDULE_HOST_CHECK;web1;99999999999", "check_time b'99999999999' outside 1970-2100"),
    (b"[1700000000] ENABLE_HOST_CHECK;", "empty host_name"),
    (b"[1700000000] ENABLE_HOST_CHECK;\xe9", "not UTF-8"),
])
def test_the_pipe_check_knows_a_malformed_line(line: bytes, why: str | None) -> None:
    assert malformed(line) == why


def test_the_document_says_what_the_server_refuses() -> None:
    from bridge.http.openapi import openapi_document
    from bridge.intake import DIALECTS

    document = openapi_document(EngineKind.NAGIOS, DIALECTS)
    paths = document["paths"]
    post = paths["/api/command/SCHEDULE_HOST_DOWNTIME"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["host_name", "end_time"]  # op5 writes "Scheduled by <author>" without one
    assert schema["properties"]["host_name"]["minLength"] == 1
    assert {"type": "null"} in schema["properties"]["start_time"]["anyOf"]  # not required: null or "" = default
    assert set(paths["/api/command/SCHEDULE_HOST_DOWNTIME"]) == {"get", "post"}  # as Allow says: GET, HEAD, POST
    assert "401" in paths["/api/command"]["get"]["responses"]
    for prefix in ("", "/ws"):  # Alignak answers every method (200 ERR, or 415 for a body that is not JSON)
        assert set(paths[f"{prefix}/host/{{host_name}}"]) == {"parameters", "get", "patch", "post", "put", "delete"}
        assert set(paths[f"{prefix}/host"]) == {"get", "patch", "post", "put", "delete"}
        assert set(paths[f"{prefix}/command"]) == set(paths[f"{prefix}/event"]) == {
            "get", "post", "put", "patch", "delete"}
    assert set(paths["/ws/login"]) == set(paths["/ws/logout"]) == {"get", "post"}
