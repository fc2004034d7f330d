"""Freshness end to end: a real Nagios 4, the daemon as a subprocess, a 3-second threshold."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import USER, BridgeProcess, bridge_config, start_bridge
from tests.helpers import http, read_status, wait_for


def freshness(bridge: BridgeProcess, query: str = "") -> dict:
    status, body = http("GET", f"{bridge.url}/api/freshness{query}", auth=USER)
    assert status == 200, body
    return body


def row(bridge: BridgeProcess, service: str) -> dict:
    rows = [r for r in freshness(bridge, "?host=fresh-host")["objects"] if r["service_description"] == service]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_silent_service_goes_stale_gets_a_stale_result_and_recovers(nagios: NagiosSandbox, tmp_path: Path) -> None:
    rule = '[freshness]\nsubmit_stale = true\nsweep_interval = 0.2\n' \
           '[[freshness.rules]]\nhost = "fresh-host"\nservice = "svc"\nthreshold = 3\n'
    config = bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True, extra=rule,
                           users=f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n')
    bridge = start_bridge(config)
    try:
        bridge.wait_listening()
        status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                         {"host_name": "fresh-host", "service_description": "svc", "status_code": 0,
                          "plugin_output": "all good"}, auth=USER)
        assert status == 200
        first = row(bridge, "svc")
        assert (first["threshold_s"], first["state"], first["stale"]) == (3, 0, False)
        stale = wait_for(lambda: (s := read_status(nagios.status_file).get(("fresh-host", "svc"), {}))
                         .get("current_state") == "2" and s, what="the bridge's stale result in status.dat")
        assert re.fullmatch(r"No passive result for [34]s \(threshold 3s\)", stale["plugin_output"]), stale
        listed = freshness(bridge, "?stale=1")
        assert [(r["host_name"], r["service_description"]) for r in listed["objects"]
                if r["host_name"] == "fresh-host" and not r["engine_checks"]] == [("fresh-host", "svc")]
        assert row(bridge, "svc")["last_result"] == first["last_result"]  # its own stale result is no result
        _, health = http("GET", f"{bridge.url}/health")
        assert health["freshness"]["stale"] >= 1

        # The engine checks engine-svc's freshness itself (check_freshness 1): the bridge reports, never submits.
        engine_row = row(bridge, "engine-svc")
        assert engine_row["engine_checks"] is True and engine_row["threshold_s"] == 3
        wait_for(lambda: row(bridge, "engine-svc")["stale"], what="engine-svc listed stale")
        assert not [line for line in nagios.log_lines() if "engine-svc;2;No passive result" in line]

        status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                         {"host_name": "fresh-host", "service_description": "svc", "status_code": 0,
                          "plugin_output": "back"}, auth=USER)
        assert status == 200
        assert row(bridge, "svc")["stale"] is False
        wait_for(lambda: read_status(nagios.status_file)[("fresh-host", "svc")]["plugin_output"] == "back",
                 what="the fresh result in status.dat")
        before = row(bridge, "svc")
    finally:
        assert bridge.stop() == 0
    again = start_bridge(config)
    try:
        again.wait_listening()
        after = row(again, "svc")
        assert after["last_result"] == before["last_result"]  # a restart resets nobody's clock
        assert "last-seen times restored" in again.log_text()
    finally:
        assert again.stop() == 0
