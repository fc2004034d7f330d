"""End to end: results sent while the engine is down are acknowledged, spooled, and delivered in order."""

from __future__ import annotations

from pathlib import Path

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import bridge_config, start_bridge
from tests.helpers import engine_outputs, http, read_status, wait_for


def test_results_sent_while_the_engine_is_down_arrive_in_order(stopped_engine: NagiosSandbox,
                                                                tmp_path: Path) -> None:
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", stopped_engine))
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
        assert engine_outputs(stopped_engine, "outage-host", "svc") == [f"result {i:02d}" for i in range(30)]
        wait_for(lambda: "engine reads its command pipe again" in bridge.log_text(), what="the recovery log line")
        assert "30 results were spooled meanwhile" in bridge.log_text()
    finally:
        assert bridge.stop() == 0


def test_after_the_engine_stops_names_are_still_checked_and_the_log_says_so(stopped_engine: NagiosSandbox,
                                                                           tmp_path: Path) -> None:
    stopped_engine.start()
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", stopped_engine, known_objects=True))
    try:
        url = bridge.wait_listening()
        assert http("GET", f"{url}/host/outage-host", auth=("u", "p"))[0] == 200  # both files read
        stopped_engine.stop()
        assert stopped_engine.objects_cache.exists() and not stopped_engine.status_file.exists()  # as Nagios 4 does

        def warning() -> str | None:
            http("GET", f"{url}/host/outage-host", auth=("u", "p"))  # the bridge looks at status.dat again
            return next((line for line in bridge.log if f"cannot read {stopped_engine.status_file}" in line), None)

        line = wait_for(warning, what="the warning about status.dat")
        assert "names are not checked" not in line
        assert "names are checked against engine.objects_cache, not this file" in line
        status, body = http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT",
                            {"host_name": "no-such-host", "status_code": 0}, auth=("u", "p"))
        assert (status, body["error"]) == (400, "Unknown object")  # what the warning says: still checked
    finally:
        assert bridge.stop() == 0
