"""The drop-in clients as scripts run them: ``naemon-bridge submit`` (update-status.py) and ``naemon-bridge send``
(send_nsca) against the real daemon and a real Nagios 4, for every exit code."""

from __future__ import annotations

import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ROOT, TOKEN, USER, BridgeProcess
from tests.helpers import read_status, wait_for


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    command = [sys.executable, "-m", "bridge"]  # this checkout's code, as the console script runs it
    done = subprocess.run([*command, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stdout + done.stderr


def submit(bridge: BridgeProcess, *extra: str, password: str = USER[1]) -> tuple[int, str]:
    return run("submit", "--url", bridge.url, "-u", USER[0], "-p", password, *extra)


# --- submit -------------------------------------------------------------------------------------------------------

def test_submit_ok_updates_the_engine(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    code, out = submit(bridge, "-H", "client-host", "-S", "backup", "-s", "CRITICAL", "-m", "backup failed",
                       "--perfdata", "size=0B")
    assert (code, out.strip()) == (0, 'OK - Service "backup" on host "client-host" was updated successfully')
    wait_for(lambda: read_status(nagios.status_file).get(("client-host", "backup"), {}).get("plugin_output")
             == "backup failed", what="the result in status.dat")
    assert read_status(nagios.status_file)[("client-host", "backup")]["performance_data"] == "size=0B"


def test_submit_host_result_with_password_from_the_environment(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    code, out = run("submit", "--url", bridge.url, "-u", USER[0], "-H", "client-host", "-s", "DOWN", "-m", "gone",
                    env={"NAEMON_BRIDGE_PASSWORD": USER[1]})
    assert (code, out.strip()) == (0, 'OK - Host "client-host" was updated successfully')
    wait_for(lambda: read_status(nagios.status_file).get(("client-host", None), {}).get("current_state") == "1",
             what="the host DOWN in status.dat")


@pytest.mark.parametrize("extra,password,code,start", [
    (("-H", "client-host", "-S", "nosuch", "-s", "OK", "-m", "x"), USER[1], 2,
     'CRITICAL - Host "client-host" or service "nosuch" was not found'),
    (("-H", "client-host", "-S", "backup", "-s", "OK", "-m", "x"), "wrong", 2,
     "CRITICAL - Username, password and/or the user's privileges were not accepted"),
    (("-H", "client-host", "-S", "backup", "-s", "OK", "-m", "x", "-P", "/api/nothing"), USER[1], 2,
     'CRITICAL - The requested URL "/api/nothing" was not found'),
    (("-H", "client-host", "-S", "backup", "-s", "OK", "-m", "x", "-P", "/health"), USER[1], 3,
     'UNKNOWN - Unexpected HTTP status code: "405"'),
    (("-H", "client-host", "-S", "backup", "-s", "ok", "-m", "x"), USER[1], 3, "usage:"),  # case-sensitive
    (("-H", "client-host", "-s", "WARNING", "-m", "x"), USER[1], 3, "usage:"),  # not a host state
    (("-S", "backup", "-s", "OK", "-m", "x"), USER[1], 3, "usage:"),  # -H missing
])
def test_submit_exit_codes(bridge: BridgeProcess, extra: tuple[str, ...], password: str, code: int,
                           start: str) -> None:
    got, out = submit(bridge, *extra, password=password)
    assert got == code, out
    assert out.startswith(start), out


def test_submit_transport_failures() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, out = run("submit", "--url", f"http://127.0.0.1:{port}", "-u", "u", "-p", "p", "-H", "h", "-s", "UP",
                    "-m", "x")
    assert (code, out.strip()) == (2, f'CRITICAL - Failed to connect to host "http://127.0.0.1:{port}" on port '
                                      f"{port}")
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code, out = run("submit", "--url", url, "-u", "u", "-p", "p", "-H", "h", "-s", "UP", "-m", "x", "-t", "1")
    assert (code, out.strip()) == (2, f'CRITICAL - Connection to host "{url}" timed out')
    code, out = run("submit", "--url", "http://[::1", "-u", "u", "-p", "p", "-H", "h", "-s", "UP", "-m", "x")
    assert code == 3 and out.startswith("UNKNOWN - Unexpected exception"), out


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server with a self-signed certificate that answers like the bridge does."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"result": "Successfully submitted PROCESS_SERVICE_CHECK_RESULT"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_submit_over_tls_verifies_unless_insecure(tls_server: int) -> None:
    base = ("submit", "-M", "localhost", "-r", str(tls_server), "-u", "u", "-p", "p", "-H", "h", "-S", "s",
            "-s", "OK", "-m", "x")
    code, out = run(*base)
    assert (code, out.strip()) == (2, 'CRITICAL - SSL certificate validation error - use "--insecure" to disable '
                                      "verification")
    code, out = run(*base, "-i")
    assert (code, out.strip()) == (0, 'OK - Service "s" on host "h" was updated successfully')


def test_submit_version_is_update_status_py_s() -> None:
    assert run("submit", "-v") == (0, "1.1\n")


# --- send ---------------------------------------------------------------------------------------------------------

def test_send_ten_thousand_lines_in_one_call(bridge: BridgeProcess, nagios: NagiosSandbox, tmp_path: Path) -> None:
    client_config = tmp_path / "client.toml"
    client_config.write_text(f'url = "{bridge.url}"\ntoken = "{TOKEN}"\n')
    lines = [f"send-host\tsvc\t{i % 3}\tresult {i:05d}" for i in range(9_999)] + ["send-host\t0\thost up\\nline 2"]
    code, out = run("send", "-c", str(client_config), stdin="\n".join(lines) + "\n")
    assert (code, out.strip()) == (0, "10000 data packet(s) sent to host successfully.")
    wait_for(lambda: read_status(nagios.status_file).get(("send-host", "svc"), {}).get("plugin_output")
             == "result 09998", what="the last service result in status.dat")
    host = wait_for(lambda: read_status(nagios.status_file).get(("send-host", None), {}).get("plugin_output")
                    == "host up" and read_status(nagios.status_file)[("send-host", None)], what="the host result")
    assert host["long_plugin_output"] == "line 2"  # send_nsca's \n reaches Nagios as long output, as with NSCA
    received = [line for line in nagios.log_lines() if "EXTERNAL COMMAND: PROCESS_SERVICE_CHECK_RESULT;send-host;"
                in line]
    assert len(received) == 9_999


def test_send_with_host_port_and_environment_credentials(bridge: BridgeProcess) -> None:
    port = bridge.url.rsplit(":", 1)[1]
    code, out = run("send", "-H", "127.0.0.1", "-p", port, "-d", ";", stdin="send-host;svc;0;fine\nnot a line\n",
                    env={"NAEMON_BRIDGE_USER": USER[0], "NAEMON_BRIDGE_PASSWORD": USER[1]})
    assert code == 0, out
    assert "1 data packet(s) sent to host successfully." in out and "line 2 skipped" in out


def test_send_failures(bridge: BridgeProcess) -> None:
    env = {"NAEMON_BRIDGE_USER": USER[0], "NAEMON_BRIDGE_PASSWORD": USER[1]}
    code, out = run("send", "--url", bridge.url, stdin="no-such-host\tsvc\t0\tx\n", env=env)
    assert code == 2 and "Error: the bridge refused 1 results (HTTP 400)" in out and "no-such-host" in out
    code, out = run("send", "--url", bridge.url, stdin="send-host\tsvc\t0\tx\n",
                    env={**env, "NAEMON_BRIDGE_PASSWORD": "wrong"})
    assert code == 2 and "(HTTP 401)" in out
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    code, out = run("send", "-H", "127.0.0.1", "-p", str(port), stdin="h\t0\tx\n", env=env)
    assert code == 2 and f"Error: Could not connect to host 127.0.0.1 on port {port}" in out
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        code, out = run("send", "-H", "127.0.0.1", "-p", str(silent.getsockname()[1]), "-to", "1",
                        stdin="h\t0\tx\n", env=env)
    assert (code, out.strip()) == (2, "Error: Timeout after 1 seconds")
    code, out = run("send", stdin="h\t0\tx\n", env=env)
    assert code == 3 and "usage:" in out
