"""Icinga 2's process-check-result, end to end: the daemon as a subprocess in front of a real Nagios 4, and every
answer compared with a real Icinga 2 (Debian's icinga2, bench/icinga2.py) given the same request."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.icinga2 import USER as ICINGA_USER
from bench.icinga2 import Icinga2, icinga2_binary
from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import USER, BridgeProcess, bridge_config, start_bridge
from tests.helpers import http, read_status, wait_for

HOST = "icinga-host"
PATH = "/v1/actions/process-check-result"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def icinga() -> Iterator[Icinga2]:
    if icinga2_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("icinga2 is not installed: .ci/run must install it")
        pytest.skip("icinga2 (Debian's icinga2) is not installed")
    peer = Icinga2([(HOST, ("a", "b", "ttl"))])
    yield peer
    peer.stop()


def ask_bridge(bridge: BridgeProcess, method: str, path: str, body: bytes | None, headers: dict[str, str],
               auth: tuple[str, str] | None = USER) -> tuple[int, str, bytes]:
    request = urllib.request.Request(bridge.url + path, data=body, method=method, headers=headers)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def both(bridge: BridgeProcess, icinga: Icinga2, query: str, body: object, *, headers: dict[str, str] = JSON,
         wrong_password: bool = False) -> tuple[tuple[int, str, bytes], tuple[int, str, bytes]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    ours = ask_bridge(bridge, "POST", PATH + query, data, headers, ("nobody", "x") if wrong_password else USER)
    theirs = icinga.request("POST", PATH + query, data, headers=headers,
                            auth=("nobody", "x") if wrong_password else icinga_user())
    return ours, theirs


def icinga_user() -> tuple[str, str]:
    return ICINGA_USER


def kind(content_type: str) -> str:
    return content_type.split(";")[0].strip()


# (query, body, extra headers): each answered alike by the bridge and by Icinga 2, byte for byte.
SAME = [
    ("?service=icinga-host!a", {"exit_status": 2, "plugin_output": "disk full", "performance_data": ["a=1", "b=2"]},
     {}),
    ("?host=icinga-host", {"exit_status": 1, "plugin_output": "host down"}, {}),
    ("", {"type": "Service", "filter": 'host.name=="icinga-host" && service.name=="b"', "exit_status": "1",
          "plugin_output": "by filter", "check_source": "cron"}, {}),
    ("", {"type": "Host", "filter": "host.name==hn", "filter_vars": {"hn": "icinga-host"}, "exit_status": 0,
          "plugin_output": "up again"}, {}),
    ("?service=icinga-host!a", {"exit_status": 0, "plugin_output": "form type"},
     {"Content-Type": "application/x-www-form-urlencoded"}),
    ("?service=icinga-host!nosuch", {"exit_status": 0, "plugin_output": "x"}, {}),
    ("?host=nosuch", {"exit_status": 0, "plugin_output": "x"}, {}),
    ("", {"exit_status": 0, "plugin_output": "no target"}, {}),
    ("?service=icinga-host!a", {"plugin_output": "x"}, {}),
    ("?service=icinga-host!a", {"exit_status": 1}, {}),
    ("?host=icinga-host", {"exit_status": 2, "plugin_output": "x"}, {}),
    ("?service=icinga-host!a", {"exit_status": 0, "plugin_output": "x"}, {"Accept": "text/html"}),
]


@pytest.mark.parametrize(("query", "body", "extra"), SAME)
def test_answers_as_icinga2_does(bridge: BridgeProcess, icinga: Icinga2, query: str, body: dict,
                                 extra: dict[str, str]) -> None:
    headers = {**JSON, **extra}
    if "Accept" in extra:
        headers["Accept"] = extra["Accept"]
    ours, theirs = both(bridge, icinga, query, body, headers=headers)
    assert (ours[0], kind(ours[1]), ours[2]) == (theirs[0], kind(theirs[1]), theirs[2])


def test_wrong_credentials_and_bad_json_as_icinga2(bridge: BridgeProcess, icinga: Icinga2) -> None:
    ours, theirs = both(bridge, icinga, "?host=icinga-host", {}, wrong_password=True)
    assert (ours[0], ours[2]) == (theirs[0], theirs[2]) == (401, b'{"error":401,"status":"Unauthorized. Please '
                                                                 b'check your user credentials."}')
    ours, theirs = both(bridge, icinga, "?host=icinga-host", b'{"exit_status": 1,')
    assert ours[0] == theirs[0] == 400
    mine, peer = json.loads(ours[2]), json.loads(theirs[2])
    assert mine["error"] == peer["error"] == 400 and mine["status"].startswith("Invalid request body: ")
    assert peer["status"].startswith("Invalid request body: ")


def test_where_icinga2_answers_500_the_bridge_answers_400_in_its_shape(bridge: BridgeProcess,
                                                                        icinga: Icinga2) -> None:
    ours, theirs = both(bridge, icinga, "?service=icinga-host!a", {"exit_status": "abc", "plugin_output": "x"})
    assert theirs[0] == 500 and json.loads(theirs[2])["results"][0]["code"] == 500
    assert ours[0] == 400 and json.loads(ours[2]) == {"results": [{
        "code": 400, "status": "Parameter 'exit_status' must be a number, not 'abc'."}]}
    ours, _ = both(bridge, icinga, "", {"type": "Service", "filter": 'match("icinga*", host.name)',
                                        "exit_status": 0, "plugin_output": "x"})
    assert ours[0] == 400 and "is not supported by naemon-bridge" in json.loads(ours[2])["status"]


def test_results_reach_nagios_with_perf_data_joined(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    status, _, body = ask_bridge(bridge, "POST", f"{PATH}?service={HOST}!b", json.dumps({
        "exit_status": 2, "plugin_output": "load high\nsecond line", "performance_data": ["load1=5", "load5=3"],
        "execution_start": 1_700_000_000, "execution_end": 1_700_000_001}).encode(), JSON)
    assert status == 200, body
    found = wait_for(lambda: (s := read_status(nagios.status_file).get((HOST, "b"), {})).get("current_state")
                     == "2" and s.get("plugin_output") == "load high" and s, what="the result in status.dat")
    assert found["performance_data"] == "load1=5 load5=3" and found["long_plugin_output"] == "second line"
    assert int(found["last_check"]) > 1_700_000_001  # the time of receipt, as Icinga 2 records it


def test_a_ttl_is_the_threshold_and_the_stale_result_follows(nagios: NagiosSandbox, tmp_path: Path) -> None:
    config = bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True,
                           extra="[freshness]\nsubmit_stale = true\nsweep_interval = 0.2\n",
                           users=f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n')
    bridge = start_bridge(config)
    try:
        bridge.wait_listening()
        status, _, body = ask_bridge(bridge, "POST", f"{PATH}?service={HOST}!ttl", json.dumps(
            {"exit_status": 0, "plugin_output": "fine for 2 s", "ttl": 2}).encode(), JSON)
        assert status == 200, body
        _, listed = http("GET", f"{bridge.url}/api/freshness?host={HOST}", auth=USER)
        row = next(r for r in listed["objects"] if r["service_description"] == "ttl")
        assert row["threshold_s"] == 2
        stale = wait_for(lambda: (s := read_status(nagios.status_file).get((HOST, "ttl"), {}))
                         .get("current_state") == "2" and s, what="the bridge's stale result")
        assert re.fullmatch(r"No passive result for [2-4]s \(threshold 2s\)", stale["plugin_output"]), stale
    finally:
        bridge.stop()
