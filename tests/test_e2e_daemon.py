"""Classic daemon mode as an admin uses it: --daemon --pidfile, a second instance refused, SIGUSR1 reopening
the log file for logrotate, SIGTERM removing the pidfile, and dropping privileges after binding."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import http, wait_for


def config_text(tmp_path: Path, extra_server: str = "") -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
{extra_server}
[engine]
kind = "nagios"
command_file = "{tmp_path / 'engine.cmd'}"
[spool]
directory = "{tmp_path / 'spool'}"
[log]
target = "file"
file = "{tmp_path / 'bridge.log'}"
[[users]]
name = "u"
password = "p"
"""


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "serve", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening_url(log: Path) -> str:
    line = wait_for(lambda: next((x for x in log.read_text().splitlines() if "listening on" in x), None)
                    if log.exists() else None, what="the daemon to listen")
    return line.split("listening on ", 1)[1].split()[0]


def test_daemon_pidfile_second_instance_logrotate_and_stop(tmp_path: Path) -> None:
    config, pidfile, log = tmp_path / "bridge.toml", tmp_path / "bridge.pid", tmp_path / "bridge.log"
    config.write_text(config_text(tmp_path))
    done = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr  # the parent returns once detached
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the pidfile"))
    try:
        assert alive(pid) and pid != os.getpid()
        url = listening_url(log)
        assert http("GET", f"{url}/health")[1]["engine"] == {"reachable": False, "stalled_s": None}

        second = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
        assert second.returncode == 1
        assert f"already running as pid {pid} (pidfile {pidfile})" in second.stderr
        assert alive(pid)

        log.rename(tmp_path / "bridge.log.1")  # logrotate moves the file, then signals
        os.kill(pid, signal.SIGUSR1)
        http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT", {"host_name": "h", "status_code": 9},
             auth=("u", "p"))
        os.kill(pid, signal.SIGHUP)  # something is logged: the reload
        wait_for(lambda: log.exists() and "reloaded" in log.read_text(), what="a new log file after SIGUSR1")
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), what="the daemon to stop")
    assert not pidfile.exists()
    assert "stopped" in log.read_text()


def test_daemon_needs_a_pidfile_and_a_stale_pidfile_is_replaced(tmp_path: Path) -> None:
    config, pidfile = tmp_path / "bridge.toml", tmp_path / "bridge.pid"
    config.write_text(config_text(tmp_path))
    done = serve("--config", str(config), "--daemon")
    assert done.returncode == 2 and "--daemon needs --pidfile" in done.stderr
    pidfile.write_text("999999\n")  # left by a process that is gone (kill -9)
    done = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr
    def new_pid() -> str | None:
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError:  # between the stale file's removal and the daemon writing its own
            return None
        return text if text and text != "999999" else None

    pid = int(wait_for(new_pid, what="the new pid"))
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), what="the daemon to stop")


def test_daemon_without_syslog_says_so_and_exits_before_detaching(tmp_path: Path) -> None:
    if os.path.exists("/dev/log"):
        pytest.skip("this machine has a syslog socket at /dev/log; the test needs one without (a container)")
    config, pidfile = tmp_path / "bridge.toml", tmp_path / "bridge.pid"
    config.write_text(config_text(tmp_path).replace('target = "file"', 'target = "stderr"'))
    done = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
    assert done.returncode == 1, done.stderr
    assert f"{config}: log.target: syslog (serve --daemon logs to syslog when log.target is \"stderr\"), but no " \
           "syslog daemon listens on /dev/log" in done.stderr
    assert not pidfile.exists()  # nothing detached
    config.write_text(config_text(tmp_path).replace('target = "file"', 'target = "syslog"'))
    done = serve("--config", str(config))
    assert done.returncode == 1
    assert f"{config}: log.target: syslog, but no syslog daemon listens on /dev/log" in done.stderr


def test_privileges_are_dropped_after_binding() -> None:
    """As 'nobody' the daemon still serves and spools, even when 'nobody' cannot read this Python (here under a
    0700 /root): it imports all it runs before it drops privileges."""
    if os.getuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("dropping privileges needs root: .ci/run runs as root")
        pytest.skip("dropping privileges needs root")
    tmp_path = Path(tempfile.mkdtemp(prefix="bridge-drop-"))  # pytest's own folder is root-only
    tmp_path.chmod(0o777)
    config, pidfile, log = tmp_path / "bridge.toml", tmp_path / "bridge.pid", tmp_path / "bridge.log"
    config.write_text(config_text(tmp_path, 'user = "nobody"\ngroup = "nogroup"'))
    done = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the pidfile"))
    try:
        url = listening_url(log)
        status, body = http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT",
                            {"host_name": "h", "status_code": 0, "plugin_output": "as nobody"}, auth=("u", "p"))
        assert status == 200, body  # no engine: spooled, by a process that is 'nobody' now
        nobody = pwd.getpwnam("nobody").pw_uid
        spooled = [path for path in (tmp_path / "spool").rglob("*") if path.is_file()]
        assert spooled and {path.stat().st_uid for path in spooled} == {nobody}
        uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
        assert uids.split()[1:] == [str(nobody)] * 4
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), what="the daemon to stop")
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(os.getuid() != 0, reason="becoming server.user needs root")
def test_serve_as_server_user_runs_on_the_loop_it_chose_while_root() -> None:
    """uvloop is imported before the drop: where 'nobody' cannot read this Python's files, the bridge must not fall
    back to asyncio's loop (nor die at SIGTERM)."""
    from bridge.daemon.server import event_loop_factory
    from tests.conftest import start_bridge

    loop = event_loop_factory()()
    expected = type(loop).__module__.split(".")[0]
    loop.close()
    tmp_path = Path(tempfile.mkdtemp(prefix="bridge-loop-"))
    tmp_path.chmod(0o777)
    config = tmp_path / "bridge.toml"
    config.write_text(config_text(tmp_path, 'user = "nobody"').replace('target = "file"', 'target = "stderr"'))
    bridge = start_bridge(config)
    try:
        bridge.wait_listening()
        assert f"event loop: {expected})" in bridge.log_text(), bridge.log_text()
    finally:
        assert bridge.stop() == 0, bridge.log_text()
