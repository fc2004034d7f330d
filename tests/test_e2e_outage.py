"""End to end: results sent while the engine is down are acknowledged, spooled, and delivered in order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary
from tests.conftest import start_bridge
from tests.helpers import http, read_status, wait_for


@pytest.fixture
def stopped_engine(tmp_path: Path):
    if nagios_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nagios4 is not installed: .ci/run must install nagios4-core")
        pytest.skip("nagios4 is not installed")
    sandbox = NagiosSandbox(tmp_path / "nagios", [SandboxHost("outage-host", (SandboxService("svc"),))])
    sandbox.verify()
    yield sandbox
    sandbox.stop()


def test_results_sent_while_the_engine_is_down_arrive_in_order(stopped_engine: NagiosSandbox,
                                                                tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\n[engine]\nkind = "nagios"\n'
                      f'command_file = "{stopped_engine.command_file}"\n'
                      f'[spool]\ndirectory = "{tmp_path / "spool"}"\n[[users]]\nname = "u"\npassword = "p"\n')
    bridge = start_bridge(config)
    try:
        url = bridge.wait_listening()
        for i in range(30):
            status, body = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                                {"host_name": "outage-host", "service_description": "svc", "status_code": i % 3,
                                 "plugin_output": f"result {i:02d}"}, auth=("u", "p"))
            assert status == 200, body
        assert bridge.log_text().count("engine stopped reading its command pipe") == 1  # once, not per result
        stopped_engine.start()
        wait_for(lambda: read_status(stopped_engine.status_file).get(("outage-host", "svc"), {})
                 .get("plugin_output") == "result 29", what="the last spooled result in status.dat")
        received = [line.rsplit(";", 1)[1] for line in stopped_engine.log_lines()
                    if "EXTERNAL COMMAND: PROCESS_SERVICE_CHECK_RESULT;outage-host;svc" in line]
        assert received == [f"result {i:02d}" for i in range(30)]
        wait_for(lambda: "engine reads its command pipe again" in bridge.log_text(), what="the recovery log line")
        assert "30 results were spooled meanwhile" in bridge.log_text()
    finally:
        assert bridge.stop() == 0
