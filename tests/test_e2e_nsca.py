"""The classic NSCA 2.x client, Debian's nsca-client 2.10.2 send_nsca, unchanged, into a real Nagios 4 through the
bridge's ``[nsca]`` listener: every supported encryption method, service and host results, multi-line output, both
packet sizes, a wrong password, hostile connections — read back from status.dat, the drops from /metrics.

send_nsca is unpacked, not installed (it conflicts with nsca-ng-client's): ``.ci/run`` puts it in /opt/nsca-classic
(``NSCA_CLASSIC`` names another folder). One bridge per encryption method, started together, all in front of the
session's engine."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from bridge.core import nsca
from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import BridgeProcess, bridge_toml, start_bridge
from tests.helpers import read_status, wait_for

CLASSIC = Path(os.environ.get("NSCA_CLASSIC", "/opt/nsca-classic"))
SEND_NSCA = CLASSIC / "usr/sbin/send_nsca"
METHODS = [int(m) for m in nsca.Method]
PASSWORD = "s3cret pass"
HOST = "nsca-host"
# The user whose grants apply; NSCA never logs in as it, so its hash is of a password nobody knows.
USERS = (f'[[users]]\nname = "nsca"\npassword_hash = "{bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(4)).decode()}"\n'
         'commands = ["PROCESS_SERVICE_CHECK_RESULT", "PROCESS_HOST_CHECK_RESULT"]\nhosts = ["nsca-*"]\n'
         '[[users]]\nname = "viewer"\npassword = "v"\n')  # who looks at /status


def require_send_nsca() -> None:
    problem = None
    if not SEND_NSCA.exists():
        problem = f"{SEND_NSCA} is missing (apt-get download nsca-client, dpkg-deb -x it into {CLASSIC})"
    else:
        run = subprocess.run([str(SEND_NSCA), "-h"], capture_output=True, text=True)
        if "NSCA Client" not in run.stdout:
            problem = f"{SEND_NSCA} does not run (libmcrypt4 missing?): {run.stderr.strip()}"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + ": .ci/run must provide it")
        pytest.skip(problem)


class Nsca:
    """A bridge with an [nsca] listener for one method, and send_nsca configured for it."""

    def __init__(self, bridge: BridgeProcess, method: int, folder: Path) -> None:
        self.bridge, self.method = bridge, method
        self.port = 0
        self.config = folder / f"send_nsca-{method}.cfg"
        self.config.write_text(f"password={PASSWORD}\nencryption_method={method}\n")

    def find_port(self) -> int:
        self.bridge.wait_listening()  # the NSCA listener is bound before the HTTP site says so
        match = re.search(r"NSCA listener bound to 127\.0\.0\.1:(\d+)", self.bridge.log_text())
        assert match, self.bridge.log_text()
        self.port = int(match.group(1))
        return self.port

    def send(self, text: str, *extra: str, config: Path | None = None) -> str:
        run = subprocess.run([str(SEND_NSCA), "-H", "127.0.0.1", "-p", str(self.port), "-c",
                              str(config or self.config), *extra], input=text.encode(), capture_output=True,
                             timeout=30)
        assert run.returncode == 0, run
        return run.stdout.decode()

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(self.bridge.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
        pattern = re.escape(f"{name}{{{wanted}}}" if wanted else name) + r" ([0-9.e+]+)"
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def listeners(nagios: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Nsca]]:
    require_send_nsca()
    folder = tmp_path_factory.mktemp("nsca")
    started: dict[int, Nsca] = {}
    try:
        for method in METHODS:
            directory = folder / f"m{method}"
            directory.mkdir()
            section = (f'[nsca]\nlisten = "127.0.0.1:0"\npassword = "{PASSWORD}"\nencryption_method = {method}\n'
                       'user = "nsca"\nread_timeout = 1\n')
            if method == 0:  # this one also enforces a packet age and lets only 127.0.0.1 in
                section += 'max_packet_age = 60\nallowed_networks = ["127.0.0.1/32"]\n'
            config = directory / "naemon-bridge.toml"
            config.write_text(bridge_toml(nagios, directory, known_objects=True, extra=section, users=USERS))
            started[method] = Nsca(start_bridge(config), method, folder)
        for listener in started.values():
            listener.find_port()
        yield started
    finally:
        for listener in started.values():
            assert listener.bridge.stop() == 0, listener.bridge.log_text()
        for listener in started.values():
            assert "Traceback" not in listener.bridge.log_text(), listener.bridge.log_text()


def status(nagios: NagiosSandbox, service: str | None) -> dict[str, str]:
    return read_status(nagios.status_file).get((HOST, service), {})


def wait_output(nagios: NagiosSandbox, service: str | None, output: str) -> dict[str, str]:
    return wait_for(lambda: (s := status(nagios, service)).get("plugin_output") == output and s,
                    what=f"{HOST}/{service} to show {output!r}")


@pytest.mark.parametrize("method", METHODS)
def test_every_method_service_results_with_multi_line_output(listeners: dict[int, Nsca], nagios: NagiosSandbox,
                                                             method: int) -> None:
    listener = listeners[method]
    block = f"{HOST}\tm{method}\t1\tmethod {method} warns|load=5\nsecond line\nthird; with a semicolon\x17"
    assert "1 data packet(s) sent" in listener.send(block)
    shown = wait_output(nagios, f"m{method}", f"method {method} warns")
    assert shown["current_state"] == "1"
    assert shown["performance_data"] == "load=5"
    assert shown["long_plugin_output"] == "second line\nthird; with a semicolon"


def test_host_and_service_results_in_one_connection(listeners: dict[int, Nsca], nagios: NagiosSandbox) -> None:
    listener = listeners[int(nsca.Method.RIJNDAEL128)]
    sent = listener.send(f"{HOST}\t0\thost up via nsca\x17{HOST}\tafter\t2\tservice down via nsca\x17")
    assert "2 data packet(s) sent" in sent
    assert wait_output(nagios, None, "host up via nsca")["current_state"] == "0"
    assert wait_output(nagios, "after", "service down via nsca")["current_state"] == "2"


@pytest.mark.parametrize("method", [int(nsca.Method.XOR), int(nsca.Method.RIJNDAEL128)])
def test_legacy_2_7_packets(listeners: dict[int, Nsca], nagios: NagiosSandbox, method: int) -> None:
    # send_nsca --legacy-2-7-mode sends 720-byte packets; nsca (and the bridge) take one, then the client closes.
    listener = listeners[method]
    assert "1 data packet(s) sent" in listener.send(f"{HOST}\tlegacy-{method}\t0\tlegacy ok\x17",
                                                    "--legacy-2-7-mode")
    assert wait_output(nagios, f"legacy-{method}", "legacy ok")["current_state"] == "0"


def _connect(port: int) -> tuple[socket.socket, bytes]:
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    init = b""
    while len(init) < nsca.INIT_PACKET_SIZE:
        chunk = connection.recv(nsca.INIT_PACKET_SIZE - len(init))
        assert chunk
        init += chunk
    return connection, init


def test_legacy_packet_built_here_for_each_method(listeners: dict[int, Nsca], nagios: NagiosSandbox) -> None:
    # The same 720-byte packet as send_nsca 2.7 builds it, encrypted here, for the methods the client case above
    # does not cover; only the last reaches the service, so each must be applied in turn.
    for method in METHODS:
        connection, init = _connect(listeners[method].port)
        iv, stamp = init[:128], int.from_bytes(init[128:], "big")
        packet = nsca.Packet(stamp, 0, HOST, "built-legacy", f"built legacy {method}")
        encrypt = nsca.cipher(nsca.Method(method), PASSWORD.encode(), iv, decrypt=False)
        connection.sendall(encrypt.update(nsca.build_packet(packet, legacy=True, filler=os.urandom(720))))
        connection.close()
        wait_output(nagios, "built-legacy", f"built legacy {method}")


@pytest.mark.parametrize("method", [int(nsca.Method.XOR), int(nsca.Method.BLOWFISH)])
def test_wrong_password_is_dropped_counted_and_nothing_written(listeners: dict[int, Nsca], nagios: NagiosSandbox,
                                                               tmp_path: Path, method: int) -> None:
    listener = listeners[method]
    wrong = tmp_path / "wrong.cfg"
    wrong.write_text(f"password=not the password\nencryption_method={method}\n")
    before = sum(listener.metric("naemon_bridge_nsca_dropped_total", reason=r) for r in ("bad_crc", "bad_version"))
    # send_nsca itself cannot tell: it exits 0 and says it sent the packet.
    assert "1 data packet(s) sent" in listener.send(f"{HOST}\twrong\t2\twrong password {method}\x17", config=wrong)
    wait_for(lambda: sum(listener.metric("naemon_bridge_nsca_dropped_total", reason=r)
                         for r in ("bad_crc", "bad_version")) == before + 1, what="the drop to be counted")
    listener.send(f"{HOST}\twrong\t0\tright password {method}\x17")  # the same path, after: it is written
    wait_output(nagios, "wrong", f"right password {method}")
    assert not any(f"wrong password {method}" in line for line in nagios.log_lines())
    assert "wrong password or encryption_method" in listener.bridge.log_text()


def test_unknown_host_and_unpermitted_host_are_dropped_and_logged_once(listeners: dict[int, Nsca]) -> None:
    listener = listeners[int(nsca.Method.TRIPLE_DES)]
    listener.send("nsca-no-such-host\tsvc\t0\tone\x17nsca-no-such-host\tsvc\t0\ttwo\x17"
                  "sentinel\tmark\t0\tnot nsca's\x17")
    wait_for(lambda: listener.metric("naemon_bridge_nsca_dropped_total", reason="unknown_object") == 2,
             what="two unknown results counted")
    wait_for(lambda: listener.metric("naemon_bridge_nsca_dropped_total", reason="not_permitted") == 1,
             what="the result for a host the user may not touch counted")
    assert listener.bridge.log_text().count("'nsca-no-such-host', service 'svc' dropped") == 1
    # The status page lists them as NSCA's, from the client's address, as the configured user's.
    request = urllib.request.Request(listener.bridge.url + "/status", headers={
        "Authorization": "Basic " + base64.b64encode(b"viewer:v").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        page = response.read().decode()
    assert re.search(r"<td>127\.0\.0\.1</td><td>nsca</td><td>nsca</td><td>not_permitted</td>", page), page
    assert len(re.findall(r"<td>nsca</td><td>nsca</td><td>unknown_object</td>", page)) >= 2  # (each run adds 2)


def test_malformed_and_stalled_connections(listeners: dict[int, Nsca], nagios: NagiosSandbox) -> None:
    listener = listeners[int(nsca.Method.CAST128)]

    def dropped(reason: str) -> float:
        return listener.metric("naemon_bridge_nsca_dropped_total", reason=reason)

    connection, _ = _connect(listener.port)
    connection.sendall(os.urandom(nsca.PACKET_SIZE))  # random bytes: a version or CRC failure
    assert connection.recv(1) == b""  # closed by the bridge
    connection.close()
    connection, _ = _connect(listener.port)
    connection.sendall(os.urandom(1000))  # a short packet, then the client closes
    connection.close()
    wait_for(lambda: dropped("short_packet") == 1, what="the short packet counted")
    connection, _ = _connect(listener.port)
    connection.sendall(os.urandom(2000))  # half a packet, then nothing: read_timeout (1 s here) closes it
    connection.settimeout(30)
    assert connection.recv(1) == b""
    connection.close()
    assert dropped("read_timeout") == 1
    assert dropped("bad_crc") + dropped("bad_version") == 1
    listener.send(f"{HOST}\tafter\t0\tstill serving\x17")
    wait_output(nagios, "after", "still serving")
    assert "Traceback" not in listener.bridge.log_text()


def test_max_packet_age_and_allowed_networks(listeners: dict[int, Nsca], nagios: NagiosSandbox) -> None:
    listener = listeners[0]  # max_packet_age = 60, allowed_networks = ["127.0.0.1/32"]
    connection, init = _connect(listener.port)
    stamp = int.from_bytes(init[128:], "big")
    connection.sendall(nsca.build_packet(nsca.Packet(stamp - 3600, 0, HOST, "after", "an hour old")))
    assert connection.recv(1) == b""  # dropped, and the connection closed, as nsca does
    connection.close()
    assert listener.metric("naemon_bridge_nsca_dropped_total", reason="stale_packet") == 1
    # send_nsca stamps its packets with the time the server sent it: its clock does not matter.
    listener.send(f"{HOST}\tafter\t0\tfresh enough\x17")
    wait_output(nagios, "after", "fresh enough")
    elsewhere = socket.create_connection(("127.0.0.1", listener.port), timeout=10, source_address=("127.0.0.2", 0))
    assert elsewhere.recv(1) == b""  # not even an init packet
    elsewhere.close()
    assert listener.metric("naemon_bridge_nsca_dropped_total", reason="network_not_allowed") == 1
    assert "connection from 127.0.0.2 refused: not in nsca.allowed_networks" in listener.bridge.log_text()


def test_with_workers_the_hub_listens(run_bridge, fifo: Path, reader, tmp_path: Path) -> None:  # noqa: ANN001
    # [server] workers = 2: the workers take HTTP, the hub (the process that delivers) takes NSCA.
    require_send_nsca()
    config = tmp_path / "naemon-bridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\nworkers = 2\n[engine]\nkind = "nagios"\n'
                      f'command_file = "{fifo}"\n[spool]\ndirectory = "{tmp_path / "spool"}"\n'
                      f'[nsca]\nlisten = "127.0.0.1:0"\npassword = "{PASSWORD}"\nuser = "nsca"\n{USERS}')
    listener = Nsca(run_bridge(config, wait=False), 1, tmp_path)
    listener.find_port()
    listener.send("nsca-any\tsvc\t0\tthrough the hub\x17nsca-any\t1\thost too\x17")
    lines = wait_for(lambda: (got := reader.read_lines()) and got, what="the lines in the pipe")
    while len(lines) < 2:
        lines += wait_for(reader.read_lines, what="the second line")
    assert [line.split(b"] ", 1)[1] for line in lines] == [
        b"PROCESS_SERVICE_CHECK_RESULT;nsca-any;svc;0;through the hub",
        b"PROCESS_HOST_CHECK_RESULT;nsca-any;1;host too"]
