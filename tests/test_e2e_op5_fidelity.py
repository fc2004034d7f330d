"""op5 clients unchanged, end to end: the daemon as a subprocess in front of a real Nagios 4, each effect read from
status.dat (docs/research/op5-command-layer.md says why op5's endpoint reads parameters this way)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import USER, BridgeProcess
from tests.helpers import http, read_blocks, read_status, wait_for

HOST = "op5-fidelity"


def submitted(bridge: BridgeProcess, name: str, **params: object) -> dict:
    status, body = http("POST", f"{bridge.url}/api/command/{name}", params, auth=USER)
    assert status == 200 and body["result"] == f"Successfully submitted {name}", body
    return body


def service(nagios: NagiosSandbox, description: str, **expected: str) -> dict[str, str]:
    def current() -> dict[str, str] | None:
        found = read_status(nagios.status_file).get((HOST, description), {})
        return found if found and all(found.get(k) == v for k, v in expected.items()) else None
    return wait_for(current, what=f"{HOST}/{description} to show {expected}")


def raw(url: str, *, auth: tuple[str, str] | None = USER, data: bytes | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_a_flexible_downtime_of_two_hours_lasts_7200_seconds(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    submitted(bridge, "SCHEDULE_SVC_DOWNTIME", host_name=HOST, service_description="plain", end_time="+1d",
              fixed=0, duration=2, comment="op5 hours")
    submitted(bridge, "SCHEDULE_SVC_DOWNTIME", host_name=HOST, service_description="plain", end_time="+1d",
              fixed="0", duration="1.5", comment="op5 fraction")
    def ours() -> dict[str, dict[str, str]] | None:
        found = {d["comment"]: d for d in read_blocks(nagios.status_file, "servicedowntime")
                 if d.get("host_name") == HOST and d.get("comment", "").startswith("op5 ")}
        return found if len(found) == 2 else None

    downtimes = wait_for(ours, what="both downtimes in status.dat")
    assert (downtimes["op5 hours"]["fixed"], downtimes["op5 hours"]["duration"]) == ("0", "7200")
    assert downtimes["op5 fraction"]["duration"] == "5400"


def test_booleans_left_out_and_sticky_1_as_op5_writes_them(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    for description in ("plain", "sticky"):
        submitted(bridge, "PROCESS_SERVICE_CHECK_RESULT", host_name=HOST, service_description=description,
                  status_code=2, plugin_output="broken")
        service(nagios, description, current_state="2")
    submitted(bridge, "ACKNOWLEDGE_SVC_PROBLEM", host_name=HOST, service_description="plain", comment="seen")
    submitted(bridge, "ACKNOWLEDGE_SVC_PROBLEM", host_name=HOST, service_description="sticky", sticky=1,
              notify=True, persistent=True, comment="op5's KB example")
    service(nagios, "plain", problem_has_been_acknowledged="1", acknowledgement_type="1")  # 1: not sticky
    service(nagios, "sticky", problem_has_been_acknowledged="1", acknowledgement_type="2")  # 2: sticky
    submitted(bridge, "ADD_SVC_COMMENT", host_name=HOST, service_description="plain", comment="op5 comment")
    comment = wait_for(lambda: [c for c in read_blocks(nagios.status_file, "servicecomment")
                                if c.get("comment_data") == "op5 comment"], what="the comment")[0]
    assert comment["persistent"] == "1" and comment["author"] == USER[0]
    ack = [c for c in read_blocks(nagios.status_file, "servicecomment")
           if c.get("comment_data") == "seen" and c.get("service_description") == "plain"][0]
    assert ack["persistent"] == "0"


def test_extra_parameters_are_ignored_with_warnings_and_perf_data_kept(bridge: BridgeProcess,
                                                                       nagios: NagiosSandbox) -> None:
    body = submitted(bridge, "PROCESS_SERVICE_CHECK_RESULT", host_name=HOST, service_description="perf",
                     status_code=1, plugin_output="slow", perf_data="time=2.5s;2;5", check_source="cron")
    assert body["warnings"] == ["ignored parameter 'check_source': PROCESS_SERVICE_CHECK_RESULT takes no such "
                                "parameter"]
    found = service(nagios, "perf", current_state="1")
    assert (found["plugin_output"], found["performance_data"]) == ("slow", "time=2.5s;2;5")
    status, body = http("POST", f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT", {
        "host_name": HOST, "service_description": "perf", "state_code": 0, "plugin_output": "never"}, auth=USER)
    assert status == 400 and body["full_error"].endswith("did you mean 'state_code'?")


def test_xml_401_and_help_from_the_daemon(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    status, kind, body = raw(f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT?format=xml",
                             data=b'{"host_name": "op5-fidelity", "service_description": "perf", "status_code": 0,'
                                  b' "plugin_output": "xml ok"}')
    assert (status, kind) == (200, "application/xml; charset=utf-8")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert ET.fromstring(body).findtext("result") == "Successfully submitted PROCESS_SERVICE_CHECK_RESULT"
    service(nagios, "perf", current_state="0", plugin_output="xml ok")

    status, _, body = raw(f"{bridge.url}/api/command/PROCESS_SERVICE_CHECK_RESULT", auth=("nobody", "x"),
                          data=b'{"host_name": "op5-fidelity", "service_description": "perf", "status_code": 2}')
    assert (status, body) == (401, b'{"error":"Unauthorized","full_error":"You need to login to access this page"}')

    status, kind, body = raw(f"{bridge.url}/api/help/command/SCHEDULE_SVC_DOWNTIME")
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b"<h1>SCHEDULE_SVC_DOWNTIME</h1>" in body and b"<td>duration</td><td>hours</td>" in body
    status, _, _ = raw(f"{bridge.url}/api/help/command", auth=None)
    assert status == 401
