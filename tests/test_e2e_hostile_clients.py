"""Hostile and broken clients against the daemon as a user runs it, over raw sockets: a corpus of request bodies
that once answered 500 (issue 15) gets 4xx in each API's error shape and writes nothing to a real FIFO reader;
slow and idle clients are cut off by ``[server] header_timeout``, ``body_timeout`` and ``keepalive_timeout``;
``max_connections`` bounds what is open; a malformed request is one warning line."""

from __future__ import annotations

import base64
import gzip
import json
import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BridgeProcess, FifoReader, start_bridge, write_config
from tests.helpers import wait_for

OP5_AUTH = "Basic " + base64.b64encode(b"u:p").decode()
TOKEN_AUTH = "Basic " + base64.b64encode(b"tok:").decode()
DIGITS = b"1" + b"0" * 5000
HOST_RESULT = "/api/command/PROCESS_HOST_CHECK_RESULT"


def config(folder: Path, server: str) -> Path:
    fifo = folder / "engine.cmd"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    return write_config(folder / "bridge.toml", f"""
[server]
listen = "127.0.0.1:0"
{server}
[engine]
kind = "nagios"
command_file = "{fifo}"
[spool]
directory = "{folder / 'spool'}"
[[users]]
name = "u"
password = "p"
[[users]]
token = "tok"
""")


class Daemon:
    def __init__(self, folder: Path, server: str) -> None:
        path = config(folder, server)
        os.mkfifo(folder / "engine.cmd", 0o660)
        self.reader = FifoReader(folder / "engine.cmd")
        self.bridge: BridgeProcess = start_bridge(path)
        url = self.bridge.wait_listening()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.address = (host, int(port))

    def connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=30)

    def stop(self) -> None:
        """Stop it; whatever the tests sent, nothing was logged as a bug (clients that hung up included)."""
        assert self.bridge.stop() == 0, self.bridge.log_text()
        self.reader.close()
        log = self.bridge.log_text()
        assert "Traceback" not in log and " ERROR " not in log, log


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """Short head and body deadlines, a keep-alive far longer than any wait below."""
    daemon = Daemon(tmp_path_factory.mktemp("quick"), "header_timeout = 1\nbody_timeout = 1\n"
                                                      "keepalive_timeout = 600\nmax_connections = 100")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """Deadlines far longer than any wait below, a short keep-alive, and room for five connections."""
    daemon = Daemon(tmp_path_factory.mktemp("patient"), "header_timeout = 600\nbody_timeout = 600\n"
                                                        "keepalive_timeout = 1\nmax_connections = 5")
    yield daemon
    daemon.stop()


def request(method: str, path: str, body: bytes = b"", *, auth: str = OP5_AUTH,
            content_type: str = "application/json", extra: str = "", close: bool = True) -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: bridge\r\nAuthorization: {auth}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}" + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode() + body


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The whole answer of a ``Connection: close`` request: status and body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def exchange(daemon: Daemon, raw: bytes) -> tuple[int, bytes]:
    with daemon.connect() as sock:
        sock.sendall(raw)
        return read_answer(sock)


def closed_by_server(sock: socket.socket, timeout: float, drip: bytes = b"") -> bytes:
    """Wait (sending ``drip`` now and then, as a slowloris client does) until the server closes ``sock``;
    returns what it sent before closing. Fails after ``timeout`` seconds."""
    received = b""

    def closed() -> bool:
        nonlocal received
        if drip:
            try:
                sock.send(drip)
            except OSError:
                return True
        if select.select([sock], [], [], 0.25)[0]:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return True
            received += chunk
            return not chunk
        return False

    wait_for(closed, timeout, "the bridge to close the connection")
    return received


OP5_CORPUS = [
    ("a number of 5,001 digits", b'{"host_name": "h", "status_code": %s}' % DIGITS, "application/json", "", 400),
    ("a string of 5,001 digits", b'{"host_name": "h", "status_code": "%s"}' % DIGITS, "application/json", "", 400),
    ("nesting past the parser's limit", b"[" * 50_000 + b"]" * 50_000, "application/json", "", 400),
    ("nesting the parser takes, in a value", b'{"host_name": "h", "status_code": %s}' % (b"[" * 900 + b"]" * 900),
     "application/json", "", 400),
    ("a lone surrogate in a parameter name", b'{"\\udc80x": 1}', "application/json", "", 400),
    ("multipart without a boundary", b"host_name=h&status_code=0", "multipart/form-data", "", 400),
    ("multipart with a boundary the body lacks", b"--yy\r\n\r\nx\r\n--yy--\r\n", "multipart/form-data; boundary=zz",
     "", 400),
    ("a form in a charset nobody knows", b"host_name=h&status_code=0",
     "application/x-www-form-urlencoded; charset=nonexistent", "", 415),
    ("a form labelled UTF-16", b"host_name=h&status_code=0", "application/x-www-form-urlencoded; charset=utf-16",
     "", 415),
    ("gzip that is not gzip", b'{"host_name": "h", "status_code": 0}', "application/json",
     "Content-Encoding: gzip\r\n", 400),
]
ALIGNAK_CORPUS = [
    ("a lone surrogate as the state", "PATCH", "/host/h", b'{"livestate": {"state": "\\udfff"}}', 200),
    ("a lone surrogate as the command", "POST", "/command", b'{"command": "\\ud800"}', 200),
    # (a livestate's such timestamp is now, as alignak-module-ws's int() fallback: tests/test_bad_input.py)
    ("a timestamp beyond a float", "POST", "/command", b'{"command": "DISABLE_HOST_CHECK", "host": "h", '
                                                       b'"timestamp": 1e400}', 200),
    ("a timestamp of minus infinity", "POST", "/command",
     b'{"command": "DISABLE_HOST_CHECK", "host": "h", "timestamp": -Infinity}', 200),
    ("nesting past the parser's limit", "PATCH", "/host/h", b'{"a": ' * 3000 + b"1" + b"}" * 3000, 400),
]


def test_a_corpus_of_bodies_that_were_500_gets_4xx_and_writes_nothing(quick: Daemon) -> None:
    for name, body, content_type, extra, status in OP5_CORPUS:
        answer_status, answer = exchange(quick, request("POST", HOST_RESULT, body, content_type=content_type,
                                                        extra=extra))
        assert answer_status == status, (name, answer)
        assert set(json.loads(answer)) == {"error", "full_error"}, name
    for name, method, path, body, status in ALIGNAK_CORPUS:
        answer_status, answer = exchange(quick, request(method, path, body, auth=TOKEN_AUTH))
        assert (answer_status, json.loads(answer)["_status"]) == (status, "ERR"), (name, answer)
    canary = request("POST", HOST_RESULT, b'{"host_name": "canary", "status_code": 0, "plugin_output": "last"}')
    assert exchange(quick, canary)[0] == 200
    # The canary is the first and only line the engine's side of the FIFO ever read.
    line = wait_for(quick.reader.read_lines, 10, "the canary in the FIFO")
    assert len(line) == 1 and line[0].endswith(b"] PROCESS_HOST_CHECK_RESULT;canary;0;last")
    assert "Traceback" not in quick.bridge.log_text() and " ERROR " not in quick.bridge.log_text()


def test_slowloris_heads_are_cut_off_while_others_are_served(quick: Daemon) -> None:
    """Four clients sending a head a byte at a time: each closed at server.header_timeout (1 s here; keep-alive
    is 600 s), however often a byte comes; a normal request in the meantime is answered."""
    slow = [quick.connect() for _ in range(4)]
    for sock in slow:
        sock.sendall(b"POST /api/results HTTP/1.1\r\nHost: x\r\n")
    assert exchange(quick, request("POST", HOST_RESULT, b'{"host_name": "beside", "status_code": 0}'))[0] == 200
    for sock in slow:
        assert closed_by_server(sock, 20, drip=b"X") == b""  # no answer: a head never completed
        sock.close()
    with quick.connect() as idle:  # a connection that never sends a byte
        assert closed_by_server(idle, 20) == b""


@pytest.mark.parametrize("head", [
    b"Content-Length: 100\r\n\r\n{\"host_name\"",  # a body that stops coming
    b"Content-Length: 2000000000\r\n\r\n",  # headers, and no body at all
])
def test_a_body_that_does_not_come_is_408_and_the_connection_closed(quick: Daemon, head: bytes) -> None:
    with quick.connect() as sock:
        sock.sendall(f"POST {HOST_RESULT} HTTP/1.1\r\nHost: x\r\nAuthorization: {OP5_AUTH}\r\n"
                     "Content-Type: application/json\r\n".encode() + head)
        answer = closed_by_server(sock, 20)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "error": "Invalid request body", "full_error": "the body did not arrive within 1 s (server.body_timeout)"}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header-7f3a\r\n\r\n", "Invalid header token: b'Bad Header-7f3a'"),
    (b"POST /host/h HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
     "Can not decode content-encoding: brotli (br)"),
])
def test_a_malformed_request_is_one_warning_line(quick: Daemon, raw: bytes, reason: str) -> None:
    assert exchange(quick, raw)[0] == 400
    warning = f"WARNING naemon_bridge.http.server: bad HTTP request from 127.0.0.1: {reason}"
    lines = wait_for(lambda: [x for x in quick.bridge.log if warning in x], 10, "the warning")
    assert len(lines) == 1
    assert "Traceback" not in quick.bridge.log_text() and " ERROR " not in quick.bridge.log_text()


def slow_body(daemon: Daemon) -> socket.socket:
    """A request whose body never comes, being handled: aiohttp said 100 Continue once it was routed."""
    sock = daemon.connect()
    sock.sendall(f"POST {HOST_RESULT} HTTP/1.1\r\nHost: x\r\nAuthorization: {OP5_AUTH}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n".encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    return sock


def test_connections_beyond_max_connections_are_refused_until_one_closes(patient: Daemon) -> None:
    held = [slow_body(patient) for _ in range(4)]
    assert exchange(patient, request("POST", HOST_RESULT, b'{"host_name": "fifth", "status_code": 0}'))[0] == 200
    assert b";fifth;0;" in wait_for(patient.reader.read_lines, 10, "the fifth connection's line")[0]
    held.append(slow_body(patient))
    with patient.connect() as sixth:
        status, body = read_answer(sixth)
    assert (status, json.loads(body)["error"]) == (503, "Service Unavailable")
    assert "server.max_connections" in json.loads(body)["full_error"]
    held.pop().close()
    ok = request("POST", HOST_RESULT, b'{"host_name": "again", "status_code": 0}')
    wait_for(lambda: exchange(patient, ok)[0] == 200, 20, "room for a connection again")
    for sock in held:
        sock.close()
    log = patient.bridge.log_text()
    assert "WARNING naemon_bridge.http: server.max_connections (5) are open: refusing new connections" in log


def test_an_idle_keep_alive_connection_is_closed(patient: Daemon) -> None:
    """server.keepalive_timeout is 1 s here; the head deadline 600 s."""
    with patient.connect() as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = closed_by_server(sock, 30)
    assert answer.startswith(b"HTTP/1.1 200 OK")


def test_a_gzip_body_a_worker_forwards_reaches_the_hub_readable(tmp_path: Path) -> None:
    """With [server] workers a worker forwards Alignak's requests to its hub with the body it read, which aiohttp
    had already decompressed: the hub must not be told it is still gzip."""
    daemon = Daemon(tmp_path, "workers = 2")
    try:
        body = gzip.compress(b'{"livestate": {"state": "down", "output": "zipped"}}')
        status, answer = exchange(daemon, request("PATCH", "/host/zipped", body, auth=TOKEN_AUTH,
                                                  extra="Content-Encoding: gzip\r\n"))
        assert (status, json.loads(answer)["_status"]) == (200, "OK"), answer
        line = wait_for(daemon.reader.read_lines, 10, "the result in the FIFO")
        assert line[0].endswith(b"] PROCESS_HOST_CHECK_RESULT;zipped;1;zipped")
    finally:
        daemon.stop()
