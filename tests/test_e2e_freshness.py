"""Freshness end to end: a real Nagios 4, the daemon as a subprocess, thresholds of a few seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService
from tests.conftest import ALIGNAK, TOKEN, USER, BridgeProcess, bridge_config, require_nagios, start_bridge
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


# Every object of this engine goes stale under default_threshold: it must not be the session's shared engine.
SILENT_HOSTS = [SandboxHost("silent-host", (SandboxService("svc-a"), SandboxService("svc-b"))),
                SandboxHost("silent-peer", (SandboxService("svc"),))]


@pytest.fixture
def silent_nagios(tmp_path: Path) -> Iterator[NagiosSandbox]:
    """A Nagios 4 of the test's own, with hosts that have services and to which nothing reports."""
    require_nagios()
    sandbox = NagiosSandbox(tmp_path / "nagios", SILENT_HOSTS)
    sandbox.verify()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_with_a_default_threshold_a_host_and_its_services_go_stale_together(silent_nagios: NagiosSandbox,
                                                                           tmp_path: Path) -> None:
    # A first start: nothing has reported, so the host and its services all fall due at start + 2 s.
    settings = '[freshness]\ndefault_threshold = 2\nsubmit_stale = true\nsweep_interval = 0.2\n' \
               '[alignak]\ngive_feedback = 2\nfeedback_host = ["freshness_state", "stale"]\n' \
               'feedback_service = ["freshness_state", "stale"]\n'
    users = f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n' \
            f'[[users]]\ntoken = "{TOKEN}"\nname = "barcode-readers"\n'
    config = bridge_config(tmp_path / "bridge.toml", silent_nagios, known_objects=True, extra=settings, users=users)
    bridge = start_bridge(config)
    try:
        bridge.wait_listening()
        stale_output = re.compile(r"No passive result for [2-9]s \(threshold 2s\)")

        def all_stale_in_status_dat() -> dict | None:
            status = read_status(silent_nagios.status_file)
            wanted = {("silent-host", None): "1", ("silent-host", "svc-a"): "2", ("silent-host", "svc-b"): "2"}
            found = {key: status.get(key, {}) for key in wanted}
            done = all(found[key].get("current_state") == state and stale_output.fullmatch(
                found[key].get("plugin_output", "")) for key, state in wanted.items())
            return found if done else None

        found = wait_for(all_stale_in_status_dat, what="stale results for silent-host and its services in status.dat")
        assert found[("silent-host", None)]["has_been_checked"] == "1"

        listed = wait_for(lambda: (body := freshness(bridge))["counts"] == {"fresh": 0, "stale": 5} and body,
                          what="every object listed stale")
        rows = {(r["host_name"], r["service_description"]): r for r in listed["objects"]}
        assert list(rows)[:3] == [("silent-host", None), ("silent-host", "svc-a"), ("silent-host", "svc-b")]
        assert all(r["stale"] and r["threshold_s"] == 2 and not r["engine_checks"] for r in rows.values()), rows
        status, health = http("GET", f"{bridge.url}/health")
        assert status == 200 and health["freshness"] == {"fresh": 0, "stale": 5}, health

        # Alignak's letters for the state a stale result carries: DOWN for the host, CRITICAL for its services.
        status, answer = http("GET", f"{bridge.url}/host/silent-host", auth=ALIGNAK)
        assert status == 200 and answer["_status"] == "OK", answer
        record = answer["_result"][0]
        assert (record["freshness_state"], record["stale"]) == ("d", True), record
        status, answer = http("PATCH", f"{bridge.url}/host/silent-host",
                              {"services": [{"name": "svc-a"}, {"name": "svc-b"}]}, auth=ALIGNAK)
        assert answer == {"_status": "OK", "_feedback": {"name": "silent-host", "freshness_state": "d", "stale": True,
                                                         "services": [
                                                             {"name": "svc-a", "freshness_state": "c", "stale": True},
                                                             {"name": "svc-b", "freshness_state": "c", "stale": True}]}}
    finally:
        assert bridge.stop() == 0, bridge.log_text()
    assert "Traceback" not in bridge.log_text()
