"""End to end: the daemon as a subprocess, a real Nagios 4, results read back from its status.dat and log."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ALIGNAK, TOKEN, USER, BridgeProcess, start_bridge
from tests.helpers import http, read_status, wait_for

_sentinel_numbers = itertools.count()


def status_of(nagios: NagiosSandbox, host: str, service: str | None = None) -> dict[str, str]:
    return read_status(nagios.status_file).get((host, service), {})


def wait_status(nagios: NagiosSandbox, host: str, service: str | None, **expected: str) -> dict[str, str]:
    def matches() -> dict[str, str] | None:
        status = status_of(nagios, host, service)
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    return wait_for(matches, what=f"{host}/{service} to show {expected} in status.dat "
                                  f"(now {status_of(nagios, host, service)})")


def barrier(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    """Send one good result and wait for the engine to apply it: anything written before it is applied too."""
    mark = f"mark {next(_sentinel_numbers)} {time.time()}"
    status, body = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                        {"host_name": "sentinel", "service_description": "mark", "status_code": 0,
                         "plugin_output": mark}, auth=USER)
    assert status == 200, body
    wait_status(nagios, "sentinel", "mark", plugin_output=mark)


def external_commands_for(nagios: NagiosSandbox, host: str) -> list[str]:
    """Commands the engine received whose target is ``host`` (its first argument)."""
    target = re.compile(rf"EXTERNAL COMMAND: [A-Z_]+;{re.escape(host)}(;|$)")
    return [line for line in nagios.log_lines() if target.search(line)]


# --- op5 style --------------------------------------------------------------------------------------------------

def test_op5_seed_request_sets_the_service_state(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    before = int(time.time())
    status, body = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                        {"host_name": "seed-host", "service_description": "Example service", "status_code": "2",
                         "plugin_output": "Example issue has occurred"}, auth=USER)
    assert (status, body) == (200, {"result": "Successfully submitted PROCESS_SERVICE_CHECK_RESULT"})
    state = wait_status(nagios, "seed-host", "Example service", current_state="2",
                        plugin_output="Example issue has occurred")
    assert before <= int(state["last_check"]) <= int(time.time())


def test_op5_form_body_host_result_with_perfdata(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    status, body = http("POST", f"{bridge.url}/api/command/PROCESS_HOST_CHECK_RESULT?format=json",
                        raw=b"host_name=op5-host&status_code=1&plugin_output=link+down%7Crtt%3D5ms%3B10%3B20",
                        content_type="application/x-www-form-urlencoded", auth=USER)
    assert (status, body) == (200, {"result": "Successfully submitted PROCESS_HOST_CHECK_RESULT"})
    wait_status(nagios, "op5-host", None, current_state="1", plugin_output="link down",
                performance_data="rtt=5ms;10;20")


def test_op5_long_output_backslashes_and_semicolons_arrive_as_sent(bridge: BridgeProcess,
                                                                   nagios: NagiosSandbox) -> None:
    output = "disk C:\\new; D:\\\\share full|used=91%;80;90\nC:\\new is 91% full\nD:\\\\share is fine"
    status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": "op5-host", "service_description": "win", "status_code": 1,
                      "plugin_output": output}, auth=USER)
    assert status == 200
    # The engine itself turns ';' into ':' in the short output (engine.md); perfdata keeps its ';'.
    wait_status(nagios, "op5-host", "win", current_state="1", plugin_output="disk C:\\new: D:\\\\share full",
                performance_data="used=91%;80;90",
                long_plugin_output="C:\\new is 91% full\nD:\\\\share is fine")


def test_op5_missing_output_gets_the_engines_placeholder(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": "op5-host", "service_description": "disk", "status_code": 3}, auth=USER)
    assert status == 200
    wait_status(nagios, "op5-host", "disk", current_state="3", plugin_output="(No output returned from plugin)")


def test_op5_output_cannot_inject_a_second_command(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    injected = f"fine\n[{int(time.time())}] PROCESS_HOST_CHECK_RESULT;bad-host;1;pwned"
    status, _ = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": "op5-host", "service_description": "multi", "status_code": 0,
                      "plugin_output": injected}, auth=USER)
    assert status == 200
    state = wait_status(nagios, "op5-host", "multi", plugin_output="fine")
    assert "PROCESS_HOST_CHECK_RESULT;bad-host;1;pwned" in state["long_plugin_output"]
    barrier(bridge, nagios)
    assert status_of(nagios, "bad-host")["has_been_checked"] == "0"


# --- Alignak style ----------------------------------------------------------------------------------------------

def test_alignak_seed_document(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    stamp = int(time.time()) - 120
    document = {
        "name": "passive-01",
        "livestate": {"state": "UP", "output": "WS output - active checks disabled", "timestamp": stamp},
        "variables": {"location": "dock 4", "_RACK": 12},
        "services": {
            "first": {"name": "dev_BarcodeReader",
                      "livestate": {"state": "warning", "output": "WS output - I am ok!",
                                    "long_output": "scanner 1: ok\nscanner 2: slow", "perf_data": "'counter'=2",
                                    "timestamp": stamp},
                      "variables": {"owner": "night shift"}},
        },
    }
    status, body = http("PATCH", f"{bridge.url}/host/ignored-url-name", document, auth=ALIGNAK)
    assert status == 200
    assert body["_status"] == "OK", body
    # As alignak-module-ws words it: the lines sent, variables only as "updated"
    assert body["_result"] == [
        "passive-01 is alive :)",
        f"[{stamp}] PROCESS_HOST_CHECK_RESULT;passive-01;0;WS output - active checks disabled",
        f"[{stamp}] PROCESS_SERVICE_CHECK_RESULT;passive-01;dev_BarcodeReader;1;WS output - I am ok!|'counter'=2\n"
        "scanner 1: ok\nscanner 2: slow",
        "Service 'passive-01/dev_BarcodeReader' updated",
        "Host 'passive-01' updated.",
    ]
    assert body["_feedback"]["name"] == "passive-01"
    assert body["_feedback"]["alias"] == "Passive host 1"
    assert body["_feedback"]["notes"] == "seed host"
    assert body["_feedback"]["passive_checks_enabled"] is True
    assert [s["name"] for s in body["_feedback"]["services"]] == ["dev_BarcodeReader"]
    host = wait_status(nagios, "passive-01", None, current_state="0", last_check=str(stamp),
                       plugin_output="WS output - active checks disabled")
    assert host["_LOCATION"].endswith(";dock 4") and host["_RACK"].endswith(";12")
    service = wait_status(nagios, "passive-01", "dev_BarcodeReader", current_state="1", last_check=str(stamp),
                          plugin_output="WS output - I am ok!", performance_data="'counter'=2",
                          long_plugin_output="scanner 1: ok\nscanner 2: slow")
    assert service["_OWNER"].endswith(";night shift")


def test_alignak_seed_document_verbatim(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    """alignak-ws.md's request, its Python-isms made valid JSON: every part acted on or named."""
    document = {
        "name": "test_host",
        "livestate": {"state": "up", "output": "Output...", "long_output": "Long output...",
                      "perf_data": "'counter'=1", "timestamp": 1491368659},
        "variables": {"test1": "string", "test2": 12, "test3": 15055.0},
        "active_checks_enabled": False,
        "passive_checks_enabled": True,
        "services": {
            "any_key": {"name": "test_service",
                        "livestate": {"state": "warning", "output": "Output...", "perf_data": "'counter'=2"},
                        "active_checks_enabled": False, "passive_checks_enabled": True}
        },
        "template": {"alias": "My host...", "_templates": ["generic-host", "important"]},
    }
    status, body = http("PATCH", f"{bridge.url}/host/test_host", document, auth=ALIGNAK)
    assert (status, body["_status"]) == (200, "OK"), body
    # The flags already have these values: nothing sent for them, "unchanged", as Alignak; the template is
    # passed over for an existing host, as Alignak does.
    assert body["_result"] == [
        "test_host is alive :)",
        "[1491368659] PROCESS_HOST_CHECK_RESULT;test_host;0;Output...|'counter'=1\nLong output...",
        f"{body['_result'][2][:12]} PROCESS_SERVICE_CHECK_RESULT;test_host;test_service;1;Output...|'counter'=2",
        "Service 'test_host/test_service' unchanged.",
        "Host 'test_host' updated.",
    ]
    assert body["_feedback"]["alias"] == "My host..."
    assert body["_feedback"]["active_checks_enabled"] is False
    assert [s["name"] for s in body["_feedback"]["services"]] == ["test_service"]
    host = wait_status(nagios, "test_host", None, current_state="0", last_check="1491368659",
                       plugin_output="Output...", long_plugin_output="Long output...",
                       performance_data="'counter'=1")
    assert [host["_TEST1"], host["_TEST2"], host["_TEST3"]] == ["1;string", "1;12", "1;15055.0"]
    wait_status(nagios, "test_host", "test_service", current_state="1", performance_data="'counter'=2",
                active_checks_enabled="0", passive_checks_enabled="1")


def test_alignak_services_list_and_livestate_list_in_order(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    now = int(time.time())
    document = {"services": [{"name": "dev_Printer", "livestate": [
        {"state": "critical", "output": "paper jam", "timestamp": now - 2},
        {"state": "ok", "output": "printing again", "timestamp": now - 1}]}]}
    status, body = http("PATCH", f"{bridge.url}/ws/host/passive-01", document, auth=ALIGNAK)
    assert (status, body["_status"]) == (200, "OK"), body
    wait_status(nagios, "passive-01", "dev_Printer", current_state="0", plugin_output="printing again",
                last_check=str(now - 1))
    assert any("dev_Printer;CRITICAL" in line for line in nagios.log_lines()), "the first livestate was applied"


def test_alignak_check_flags_become_enable_disable_commands(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    url = f"{bridge.url}/host/flags-host"
    status, body = http("PATCH", url, {"services": {"svc": {"passive_checks_enabled": False}}}, auth=ALIGNAK)
    assert body["_status"] == "OK", body
    assert any("DISABLE_PASSIVE_SVC_CHECKS;flags-host;svc" in line for line in body["_result"])
    wait_status(nagios, "flags-host", "svc", passive_checks_enabled="0")
    status, body = http("POST", url, {"services": {"svc": {"passive_checks_enabled": True,
                                                           "livestate": {"state": "ok", "output": "back"}}}},
                        auth=ALIGNAK)
    assert body["_status"] == "OK", body
    wait_status(nagios, "flags-host", "svc", passive_checks_enabled="1", plugin_output="back")


def test_alignak_unknown_service_is_reported_and_the_rest_applied(bridge: BridgeProcess,
                                                                  nagios: NagiosSandbox) -> None:
    document = {"livestate": {"state": "down", "output": "unplugged"},
                "services": {"x": {"name": "no-such-service", "livestate": {"state": "ok"}}}}
    status, body = http("PATCH", f"{bridge.url}/host/flags-host", document, auth=ALIGNAK)
    assert body["_status"] == "OK", body
    assert ("Requested service 'flags-host/no-such-service' does not exist. Note that service creation is not "
            "allowed.") in body["_result"]
    wait_status(nagios, "flags-host", None, current_state="1", plugin_output="unplugged")


# --- bad input: a clear error, and nothing reaches the engine ---------------------------------------------------

def _op5(command: str, params: dict) -> tuple:
    return ("POST", f"/api/command/{command}", params, USER, "application/json")


_SERVICE = {"host_name": "bad-host", "service_description": "svc", "plugin_output": "x"}

BAD_REQUESTS = {
    "op5 host name with ';'": (_op5("PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "host_name": "bad-host;x",
                                                                      "status_code": 2}), 400, "host_name"),
    "op5 newline in service": (_op5("PROCESS_SERVICE_CHECK_RESULT",
                                    {**_SERVICE, "service_description": "svc\nPROCESS_HOST_CHECK_RESULT;bad-host;1;x",
                                     "status_code": 2}), 400, "service_description"),
    "op5 service status 7": (_op5("PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "status_code": "7"}), 400,
                             "status_code"),
    "op5 host status 3": (_op5("PROCESS_HOST_CHECK_RESULT", {"host_name": "bad-host", "status_code": 3}), 400,
                          "status_code"),
    "op5 status false": (_op5("PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "status_code": False}), 400,
                         "status_code"),
    "op5 missing status": (_op5("PROCESS_SERVICE_CHECK_RESULT", _SERVICE), 400, "status_code"),
    "op5 unknown service": (_op5("PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "service_description": "nope",
                                                                  "status_code": 1}), 400, "nope"),
    "op5 unknown host": (_op5("PROCESS_HOST_CHECK_RESULT", {"host_name": "bad-host-2", "status_code": 1}), 400,
                         "bad-host-2"),
    "op5 unknown command": (_op5("PROCESS_SERVICE_CHECK_RESULTS", {**_SERVICE, "status_code": 1}), 404,
                            "PROCESS_SERVICE_CHECK_RESULT"),
    "op5 wrong password": (("POST", "/api/command/PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "status_code": 1},
                            ("status_update", "wrong"), "application/json"), 401, "You need to login"),
    "op5 no auth": (("POST", "/api/command/PROCESS_SERVICE_CHECK_RESULT", {**_SERVICE, "status_code": 1},
                     None, "application/json"), 401, "You need to login"),
    "op5 malformed JSON": (("POST", "/api/command/PROCESS_SERVICE_CHECK_RESULT", b'{"host_name": "bad-host",',
                            USER, "application/json"), 400, "JSON"),
    "alignak unknown host": (("PATCH", "/host/bad-host-2", {"livestate": {"state": "up"}}, ALIGNAK,
                              "application/json"), 200, "Requested host 'bad-host-2' does not exist"),
    "alignak bad host state": (("PATCH", "/host/bad-host", {"livestate": {"state": "sideways"}}, ALIGNAK,
                                "application/json"), 200, "Host state must be UP, DOWN or UNREACHABLE"),
    "alignak missing state": (("PATCH", "/host/bad-host", {"livestate": {"output": "x"}}, ALIGNAK,
                               "application/json"), 200, "Missing state in the livestate."),
    "alignak python True": (("PATCH", "/host/bad-host",
                             b'{"livestate": {"state": "up"}, "active_checks_enabled": True}', ALIGNAK,
                             "application/json"), 400, "Invalid JSON document"),
    "alignak not JSON content type": (("PATCH", "/host/bad-host", b'{"livestate": {"state": "up"}}', ALIGNAK,
                                       "text/plain"), 415, "Content-Type"),
    "alignak no auth": (("PATCH", "/host/bad-host", {"livestate": {"state": "up"}}, None, "application/json"),
                        401, "authentication"),
    "alignak template for unknown host": (("PATCH", "/host/new-host", {"template": {"alias": "x"}}, ALIGNAK,
                                           "application/json"), 200, "cannot create hosts"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_input_is_refused_and_changes_nothing(name: str, bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    (method, path, body, auth, content_type), expected_status, mentioned = BAD_REQUESTS[name]
    raw = body if isinstance(body, bytes) else None
    status, answer = http(method, bridge.url + path, None if raw else body, auth=auth, content_type=content_type,
                          raw=raw)
    assert status == expected_status, answer
    text = str(answer)
    assert mentioned.lower() in text.lower(), answer
    if path.startswith("/host"):
        assert answer["_status"] == "ERR"
    else:
        assert set(answer) == {"error", "full_error"}
    barrier(bridge, nagios)
    assert external_commands_for(nagios, "bad-host") == []
    assert status_of(nagios, "bad-host")["has_been_checked"] == "0"
    assert status_of(nagios, "bad-host", "svc")["has_been_checked"] == "0"


def test_the_daemon_runs_on_uvloop(bridge: BridgeProcess) -> None:
    listening = next(line for line in bridge.log if "listening on" in line)
    assert "event loop: uvloop" in listening  # a dependency: what CI tests is what the benchmark measures


def test_the_bridge_logs_no_token(bridge: BridgeProcess) -> None:
    http("PATCH", f"{bridge.url}/host/passive-01", {"livestate": {"state": "up"}}, auth=ALIGNAK)
    http("PATCH", f"{bridge.url}/host/passive-01", {"livestate": {"state": "up"}}, auth=("not-a-token", ""))
    assert TOKEN not in bridge.log_text()


def test_objects_cache_is_reread_when_the_engine_restarts(nagios: NagiosSandbox, tmp_path: Path) -> None:
    """A restarted engine rewrites objects.cache; the bridge picks the new objects up without a restart."""
    cache = tmp_path / "objects.cache"
    cache.write_text("define host {\n\thost_name\tonly-one\n\t}\n")
    config = tmp_path / "bridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:0"\n[engine]\nkind = "nagios"\n'
                      f'command_file = "{nagios.command_file}"\nobjects_cache = "{cache}"\n'
                      f'[spool]\ndirectory = "{tmp_path / "spool"}"\n'
                      f'[[users]]\nname = "u"\npassword = "p"\n')
    process = start_bridge(config)
    try:
        url = process.wait_listening()
        params = {"host_name": "op5-host", "status_code": 0, "plugin_output": "cache reread"}
        status, body = http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT", params, auth=("u", "p"))
        assert status == 400 and "op5-host" in body["full_error"]
        cache.write_text(nagios.objects_cache.read_text())
        wait_for(lambda: http("POST", f"{url}/api/command/PROCESS_HOST_CHECK_RESULT", params,
                              auth=("u", "p"))[0] == 200, what="the new objects cache to be read")
        wait_status(nagios, "op5-host", None, plugin_output="cache reread")
    finally:
        assert process.stop() == 0
