"""The README's first quick-start command: ``naemon-bridge demo``, used as a newcomer would."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from bridge.daemon.sandbox import nagios_binary
from tests.helpers import http

ROOT = Path(__file__).resolve().parent.parent


def _command() -> list[str]:
    return [sys.executable, "-m", "bridge"]  # this checkout's code, as the console script runs it


def _run_demo(*extra: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    process = subprocess.Popen([*_command(), "demo", "--listen", "127.0.0.1:0", *extra], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _wait_line(lines: queue.Queue[str], needle: str, timeout: float = 30.0) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line with {needle!r}; output so far:\n{''.join(seen)}") from None
        seen.append(line)
        if needle in line:
            return line


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(30)


def _demo_curl_body() -> dict[str, str]:
    return {"host_name": "demo-host", "service_description": "demo-service", "status_code": "2",
            "plugin_output": "Example issue has occurred"}


def test_demo_without_an_engine_shows_each_line_the_engine_would_get() -> None:
    process, lines = _run_demo("--no-nagios")
    try:
        banner = _wait_line(lines, "naemon-bridge demo: listening on ")
        url = banner.split("listening on ")[1].split(",")[0]
        assert "demo command pipe" in banner
        _wait_line(lines, "curl -u demo:demo")
        assert _wait_line(lines, "The status page").strip() == \
            f"The status page, in a browser: {url}/status (log in as 'demo')."
        status, body = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT", _demo_curl_body(),
                            auth=("demo", "demo"))
        assert status == 200, body
        line = _wait_line(lines, "engine pipe <- ")
        assert "PROCESS_SERVICE_CHECK_RESULT;demo-host;demo-service;2;Example issue has occurred" in line
        page = urllib.request.Request(f"{url}/status", headers={"Authorization": "Basic ZGVtbzpkZW1v"})  # demo:demo
        with urllib.request.urlopen(page, timeout=30) as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
    finally:
        assert _stop(process) == 0


def test_demo_with_nagios4_shows_the_engine_changing_state() -> None:
    if nagios_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nagios4 is not installed: .ci/run must install nagios4-core")
        pytest.skip("nagios4 is not installed")
    process, lines = _run_demo()
    try:
        banner = _wait_line(lines, "naemon-bridge demo: listening on ")
        assert "throwaway Nagios 4" in banner
        url = banner.split("listening on ")[1].split(",")[0]
        status, body = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT", _demo_curl_body(),
                            auth=("demo", "demo"))
        assert status == 200, body
        _wait_line(lines, "SERVICE ALERT: demo-host;demo-service;CRITICAL")
        status, body = http("PATCH", f"{url}/host/demo-host", {"livestate": {"state": "down", "output": "gone"}},
                            auth=("demo-token", ""))
        assert body["_status"] == "OK", body
        _wait_line(lines, "HOST ALERT: demo-host;DOWN")
    finally:
        assert _stop(process) == 0


def test_the_demo_runs_on_the_event_loop_serve_runs_on() -> None:
    from bridge.daemon.server import event_loop_factory

    loop = event_loop_factory()()
    expected = type(loop).__module__.split(".")[0]  # "uvloop" where it is installed, as setup.cfg requires
    loop.close()
    process, lines = _run_demo("--no-nagios")
    try:
        line = _wait_line(lines, "event loop: ")
        assert f"event loop: {expected})" in line, line
    finally:
        assert _stop(process) == 0
