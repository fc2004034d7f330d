"""Classic daemon mode as an admin uses it: --daemon --pidfile, a second instance refused, SIGUSR1 reopening
the log file for logrotate, SIGTERM removing the pidfile, and dropping privileges after binding."""

from __future__ import annotations

import json
import os
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


def _nobody_can_read(path: str) -> bool:
    return subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", f"test -r '{path}'"]).returncode == 0


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
def test_privileges_are_dropped_after_binding() -> None:
    if not _nobody_can_read(json.__file__):
        pytest.skip(f"this Python ({sys.prefix}) is not readable by 'nobody', so a process that became 'nobody' "
                    "cannot run it; production installs (/usr, /opt) are")
    tmp_path = Path(tempfile.mkdtemp(prefix="bridge-drop-"))  # pytest's own folder is root-only
    tmp_path.chmod(0o777)
    config, pidfile, log = tmp_path / "bridge.toml", tmp_path / "bridge.pid", tmp_path / "bridge.log"
    config.write_text(config_text(tmp_path, 'user = "nobody"\ngroup = "nogroup"'))
    done = serve("--config", str(config), "--daemon", "--pidfile", str(pidfile))
    assert done.returncode == 0, done.stderr
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the pidfile"))
    try:
        listening_url(log)
        uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
        import pwd

        nobody = pwd.getpwnam("nobody").pw_uid
        assert uids.split()[1:] == [str(nobody)] * 4
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), what="the daemon to stop")
