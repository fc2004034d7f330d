"""Operating it: systemd's notify protocol on a socket of the test's own, the unit file, and live reload
(SIGHUP) with traffic flowing — the daemon as a subprocess, a real Nagios 4."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from bridge.daemon.systemd import Notifier
from tests.conftest import ROOT, bridge_config, bridge_toml, start_bridge
from tests.helpers import http, wait_for


def test_systemd_hears_ready_watchdog_and_stopping_in_order(nagios: NagiosSandbox, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(20)
    config = bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True)
    os.environ.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="200000")
    try:
        bridge = start_bridge(config)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    try:
        messages: list[str] = []

        def next_message() -> str:
            message = listener.recv(4096).decode()
            messages.append(message)
            return message

        ready = next_message()
        assert ready.startswith("READY=1\nSTATUS=listening on http://127.0.0.1:"), ready
        assert "engine reading its pipe" in ready
        bridge.wait_listening()
        watchdogs = [next_message() for _ in range(3)]  # every 0.1 s: half of WATCHDOG_USEC
        assert all(m.startswith("WATCHDOG=1\nSTATUS=engine reading its pipe; spool: 0 results") for m in watchdogs)
        bridge.process.send_signal(signal.SIGTERM)
        while not next_message().startswith("STOPPING=1"):
            pass
        assert bridge.process.wait(20) == 0
        kinds = [m.split("\n", 1)[0] for m in messages]
        assert kinds[0] == "READY=1" and kinds[-1] == "STOPPING=1" and set(kinds[1:-1]) == {"WATCHDOG=1"}
    finally:
        bridge.stop()
        listener.close()


def test_the_watchdog_is_for_the_main_process_only() -> None:
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval \
        is None
    assert Notifier({}).enabled is False


def _systemd_analyze() -> str:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)")
    return analyze


def _verify(unit: str, folder: Path) -> None:
    """systemd's own check of a unit: syntax, known keys, and that the Exec programs exist and are executable."""
    path = folder / "naemon-bridge.service"
    path.write_text(unit)
    done = subprocess.run([_systemd_analyze(), "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "naemon-bridge.service" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


def _unit_lines(unit: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))


def test_the_shipped_unit_is_the_template_with_the_defaults() -> None:
    from bridge.daemon.systemd_unit import render_unit

    shipped = (ROOT / "systemd" / "naemon-bridge.service").read_text()
    assert shipped == render_unit()
    for option in ("Type=notify", "WatchdogSec=", "ExecReload=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                   "ReadWritePaths="):
        assert option in shipped


def test_systemd_unit_prints_a_unit_that_runs_this_installation(tmp_path: Path) -> None:
    # A console script where a virtualenv puts it, written as pip writes one.
    script = tmp_path / "venv" / "bin" / "naemon-bridge"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom bridge.daemon.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    config = tmp_path / "etc" / "naemon-bridge.toml"
    config.parent.mkdir()
    config.write_text(f'[engine]\ncommand_file = "{tmp_path / "naemon.cmd"}"\n[spool]\n'
                      f'directory = "{tmp_path / "spool"}"\n[[users]]\nname = "u"\npassword = "p"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(script), "systemd-unit", "--config", str(config), "--user", "monitor",
                           "--group", "www-data"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = _unit_lines(done.stdout)
    assert lines["ExecStart"] == f"{script} serve --config {config}"
    assert lines["ExecStartPre"] == f"{script} check-config --config {config}"
    assert (lines["User"], lines["Group"]) == ("monitor", "www-data")
    _verify(done.stdout, tmp_path)
    # The command systemd would run before each start works as printed.
    check = subprocess.run(shlex.split(lines["ExecStartPre"]), capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 0 and "OK" in check.stdout, check.stderr


def test_systemd_unit_without_a_console_script_runs_this_python(tmp_path: Path) -> None:
    config = tmp_path / "with space" / "bridge.toml"
    done = subprocess.run([sys.executable, "-m", "bridge", "systemd-unit", "--config", str(config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = _unit_lines(done.stdout)
    assert lines["ExecStart"] == f'{sys.executable} -m bridge serve --config "{config}"'
    assert (lines["User"], lines["Group"]) == ("naemon-bridge", "naemon")
    _verify(done.stdout, tmp_path)


def test_reload_applies_new_passwords_and_permissions_without_losing_results(nagios: NagiosSandbox,
                                                                             tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    steady = '[[users]]\nname = "steady"\npassword = "s"\n'

    def config_text(more_users: str) -> str:
        return bridge_toml(nagios, tmp_path, known_objects=True, users=steady + more_users)

    config.write_text(config_text('[[users]]\nname = "alice"\npassword = "old"\n'))
    bridge = start_bridge(config)
    url = bridge.wait_listening()
    host_result = {"host_name": "reload-host", "status_code": 0, "plugin_output": "x"}

    def post(user: tuple[str, str], params: dict) -> int:
        return http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT", params, auth=user)[0]

    acknowledged: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            output = f"during reload {i}"
            if post(("steady", "s"), {**host_result, "plugin_output": output}) == 200:
                acknowledged.append(output)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        assert post(("alice", "old"), host_result) == 200
        config.write_text(config_text('[[users]]\nname = "alice"\npassword = "new"\n'
                                      'commands = ["PROCESS_SERVICE_CHECK_RESULT"]\n'))
        bridge.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in bridge.log_text(), what="the reload")
        assert post(("alice", "old"), host_result) == 401  # the old password is gone
        status, body = http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT", host_result,
                            auth=("alice", "new"))
        assert status == 401 and body["error"] == "Permission denied"  # the new permissions apply
        status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                         {"host_name": "reload-host", "service_description": "svc", "status_code": 0},
                         auth=("alice", "new"))
        assert status == 200

        config.write_text(config_text("") + '[server]\nlisten = "127.0.0.1:1"\n')
        bridge.process.send_signal(signal.SIGHUP)  # a broken config: [server] twice
        wait_for(lambda: "reload failed" in bridge.log_text(), what="the failed reload to be logged")
        assert str(config) in bridge.log_text().split("reload failed", 1)[1].splitlines()[0]
        assert post(("alice", "new"), {**host_result, "host_name": "reload-host"}) == 401  # still the last good
        stop.set()
        sender.join()
    finally:
        stop.set()
        sender.join()
        assert bridge.stop() == 0
    assert len(acknowledged) > 10
    wait_for(lambda: all(f"reload-host;0;{o}" in "\n".join(nagios.log_lines()) for o in acknowledged[-3:]),
             what="the last results sent during the reloads")
    log = "\n".join(nagios.log_lines())
    missing = [output for output in acknowledged if f"PROCESS_HOST_CHECK_RESULT;reload-host;0;{output}\n" not in
               log + "\n"]
    assert missing == []
