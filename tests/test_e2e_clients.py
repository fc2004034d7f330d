"""The drop-in clients as scripts run them: ``naemon-bridge submit`` (update-status.py) and ``naemon-bridge send``
(send_nsca) against the real daemon and a real Nagios 4, for every exit code."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ROOT, TOKEN, USER, BridgeProcess, bridge_toml
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


def _readme_block(heading: str, language: str) -> str:
    """The first ```language block after the README's heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_submit_example_works_against_the_default_setup(run_bridge: Callable[..., BridgeProcess],
                                                                   nagios: NagiosSandbox, tmp_path: Path) -> None:
    """As written: the README's command, its backup-jobs user and grants, the default listening address (the
    bridge here listens on a free port in its place)."""
    command = shlex.split(_readme_block("### `naemon-bridge submit`", "sh").replace("\\\n", " "))
    default_url = "http://" + tomllib.loads((ROOT / "etc" / "naemon-bridge.toml").read_text())["server"]["listen"]
    assert command[:2] == ["naemon-bridge", "submit"] and default_url in command, command
    user = re.sub(r"^password_hash = .*$", 'password = "secret"',
                  _readme_block("### Users and permissions", "toml"), flags=re.M)
    config = tmp_path / "bridge.toml"
    config.write_text(bridge_toml(nagios, tmp_path, known_objects=True, users=user))
    bridge = run_bridge(config)
    code, out = run(*[bridge.url if arg == default_url else arg for arg in command[1:]])
    assert (code, out.strip()) == (0, 'OK - Service "Backup nightly" on host "db1" was updated successfully')
    wait_for(lambda: read_status(nagios.status_file).get(("db1", "Backup nightly"), {}).get("plugin_output")
             == "backup failed", what="the README's result in status.dat")


def test_submit_with_monhost_to_a_plain_http_bridge_says_how_to_reach_it(bridge: BridgeProcess,
                                                                         nagios: NagiosSandbox) -> None:
    port = bridge.url.rsplit(":", 1)[1]
    args = ("-u", USER[0], "-p", USER[1], "-H", "client-host", "-S", "backup", "-s", "WARNING", "-m", "via hint")
    code, out = run("submit", "-M", "127.0.0.1", "-r", port, "-i", *args)
    assert (code, out.strip()) == (2, f"CRITICAL - TLS handshake failed: the server at 127.0.0.1 port {port} "
                                      "answered plain HTTP (-M always means https); reach it with --url "
                                      f"http://127.0.0.1:{port}, or give the bridge server.tls_cert")
    code, out = run("submit", "--url", f"http://127.0.0.1:{port}", *args)  # what the message says to do
    assert code == 0, out
    wait_for(lambda: read_status(nagios.status_file).get(("client-host", "backup"), {}).get("plugin_output")
             == "via hint", what="the result in status.dat")
    code, out = run("submit", "--url", bridge.url, "-r", port, *args)
    assert code == 3 and "give the bridge as --url or as -M/-r, not both" in out, out


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
    assert "1 data packet(s) sent to host successfully." in out
    assert "Warning: line 2 skipped: not host;[service;]code;output" in out
    code, out = run("send", "--url", bridge.url, stdin="not a line\n",
                    env={"NAEMON_BRIDGE_USER": USER[0], "NAEMON_BRIDGE_PASSWORD": USER[1]})
    assert "Warning: line 1 skipped: not host<TAB>[service<TAB>]code<TAB>output" in out, out


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return int(closed.getsockname()[1])


def test_send_command_line_wins_over_the_client_config(bridge: BridgeProcess, nagios: NagiosSandbox,
                                                       tmp_path: Path) -> None:
    port, elsewhere = bridge.url.rsplit(":", 1)[1], _closed_port()
    client_config = tmp_path / "client.toml"
    client_config.write_text(f'url = "http://127.0.0.1:{elsewhere}"\nuser = "{USER[0]}"\npassword = "{USER[1]}"\n')
    for options, output in ((("-H", "127.0.0.1", "-p", port), "by -H -p"), (("-p", port), "by -p")):
        code, out = run("send", *options, "-c", str(client_config), stdin=f"send-host\tsvc\t1\t{output}\n")
        assert (code, out.strip()) == (0, "1 data packet(s) sent to host successfully."), options
        wait_for(lambda: read_status(nagios.status_file).get(("send-host", "svc"), {}).get("plugin_output")
                 == output, what=f"the result sent {output}")  # noqa: B023 (waited for within the iteration)
    # A failure names the URL it used, not a default port.
    code, out = run("send", "--url", f"http://127.0.0.1:{elsewhere}", "-c", str(client_config), stdin="h\t0\tx\n")
    assert (code, out.strip().split(": [Errno")[0]) == (
        2, f"Error: Could not connect to host 127.0.0.1 on port {elsewhere} (http://127.0.0.1:{elsewhere})")
    code, out = run("send", "--url", f"https://127.0.0.1:{port}", "-i", "-c", str(client_config),
                    stdin="h\t0\tx\n")
    assert (code, out.strip()) == (2, f"Error: TLS handshake with https://127.0.0.1:{port} failed: the server "
                                      f"answered plain HTTP; reach it with --url http://127.0.0.1:{port}, or give "
                                      "the bridge server.tls_cert")
    code, out = run("send", "--url", bridge.url, "-p", port, "-c", str(client_config), stdin="h\t0\tx\n")
    assert code == 3 and "give the bridge as --url or as -H/-p, not both" in out, out


def test_send_names_every_unknown_object_by_its_line_and_submits_none(bridge: BridgeProcess,
                                                                     nagios: NagiosSandbox) -> None:
    env = {"NAEMON_BRIDGE_USER": USER[0], "NAEMON_BRIDGE_PASSWORD": USER[1]}
    lines = "send-host\tsvc\t2\tnot applied\nnot a line\nno-such-1\t0\tx\nsend-host\tno-such-svc\t0\tx\n" \
            "no-such-2\tsvc\t0\tx\n"
    code, out = run("send", "--url", bridge.url, stdin=lines, env=env)
    assert code == 2, out
    assert ("Error: the bridge refused 4 results (HTTP 400): 3 of 4 results are invalid, none was submitted: "
            "line 3: host_name: the engine has no host 'no-such-1'; line 4: service_description: the engine has no "
            "service 'no-such-svc' on host 'send-host'; line 5: host_name: the engine has no host 'no-such-2'") in out
    # All or nothing: the valid first line was not applied (a later result arrives, the refused one never did).
    code, out = run("send", "--url", bridge.url, stdin="sentinel\tmark\t0\tafter the refused batch\n", env=env)
    assert code == 0, out
    wait_for(lambda: read_status(nagios.status_file).get(("sentinel", "mark"), {}).get("plugin_output")
             == "after the refused batch", what="the sentinel in status.dat")
    assert not any("not applied" in line for line in nagios.log_lines())


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
