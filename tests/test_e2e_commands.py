"""A representative set of external commands through op5's API into a real Nagios 4, read back from status.dat."""

from __future__ import annotations

import time
import urllib.request

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ALIGNAK, USER, BridgeProcess
from tests.helpers import http, read_blocks, read_status, wait_for


def command(bridge: BridgeProcess, name: str, **params: object) -> None:
    status, body = http("POST", f"{bridge.url}/api/command/{name}", params, auth=USER)
    assert (status, body) == (200, {"result": f"Successfully submitted {name}"}), body


def service_status(nagios: NagiosSandbox) -> dict[str, str]:
    return read_status(nagios.status_file).get(("cmd-host", "svc"), {})


def wait_service(nagios: NagiosSandbox, **expected: str) -> dict[str, str]:
    return wait_for(lambda: (s := service_status(nagios)) and all(s.get(k) == v for k, v in expected.items()) and s,
                    what=f"cmd-host/svc to show {expected}")


def test_acknowledge_downtime_comment_flags_and_variables(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    command(bridge, "PROCESS_SERVICE_CHECK_RESULT", host_name="cmd-host", service_description="svc",
            status_code=2, plugin_output="broken")
    wait_service(nagios, current_state="2")

    command(bridge, "ACKNOWLEDGE_SVC_PROBLEM", host_name="cmd-host", service_description="svc", sticky=True,
            notify="false", persistent=0, comment="looking into it")
    wait_service(nagios, problem_has_been_acknowledged="1", acknowledgement_type="2")  # 2 = sticky

    command(bridge, "SCHEDULE_SVC_DOWNTIME", host_name="cmd-host", service_description="svc", end_time="+1h",
            comment="maintenance window")
    downtime = wait_for(lambda: [d for d in read_blocks(nagios.status_file, "servicedowntime")
                                 if d.get("comment") == "maintenance window"], what="the downtime in status.dat")[0]
    assert downtime["author"] == USER[0] and downtime["fixed"] == "1"
    assert int(downtime["end_time"]) - int(downtime["start_time"]) == 3600
    command(bridge, "DEL_SVC_DOWNTIME", downtime_id=downtime["downtime_id"])
    wait_for(lambda: not [d for d in read_blocks(nagios.status_file, "servicedowntime")
                          if d.get("comment") == "maintenance window"], what="the downtime to be deleted")

    command(bridge, "ADD_HOST_COMMENT", host_name="cmd-host", persistent=1, comment="rebooted; all fine")
    comment = wait_for(lambda: [c for c in read_blocks(nagios.status_file, "hostcomment")
                                if c.get("host_name") == "cmd-host"], what="the host comment")[0]
    assert comment["author"] == USER[0] and comment["comment_data"] == "rebooted; all fine"

    command(bridge, "ENABLE_SVC_CHECK", host_name="cmd-host", service_description="svc")
    command(bridge, "ENABLE_SVC_NOTIFICATIONS", host_name="cmd-host", service_description="svc")
    wait_service(nagios, active_checks_enabled="1", notifications_enabled="1")
    command(bridge, "DISABLE_SVC_CHECK", host_name="cmd-host", service_description="svc")
    command(bridge, "DISABLE_SVC_NOTIFICATIONS", host_name="cmd-host", service_description="svc")
    wait_service(nagios, active_checks_enabled="0", notifications_enabled="0")

    status, body = http("POST", f"{bridge.url}/api/command/CHANGE_CUSTOM_SVC_VAR",
                        {"host_name": "cmd-host", "service_description": "svc", "varname": "owner",
                         "varvalue": "night shift; team B"}, auth=USER)
    assert status == 400 and "varvalue" in body["full_error"]  # Nagios 4 would keep only "night shift"
    command(bridge, "CHANGE_CUSTOM_SVC_VAR", host_name="cmd-host", service_description="svc", varname="owner",
            varvalue="night shift, team B")
    wait_service(nagios, _OWNER="1;night shift, team B")

    command(bridge, "REMOVE_SVC_ACKNOWLEDGEMENT", host_name="cmd-host", service_description="svc")
    wait_service(nagios, problem_has_been_acknowledged="0")
    command(bridge, "SCHEDULE_FORCED_SVC_CHECK", host_name="cmd-host", service_description="svc",
            check_time=int(time.time()))


def test_alignak_event_and_command_reach_the_engine(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    status, body = http("POST", f"{bridge.url}/event", {"host": "cmd-host", "service": "svc",
                                                          "comment": "door opened; badge 42"}, auth=ALIGNAK)
    assert (status, body["_status"]) == (200, "OK"), body
    comment = wait_for(lambda: [c for c in read_blocks(nagios.status_file, "servicecomment")
                                if c.get("comment_data") == "door opened; badge 42"], what="the event's comment")[0]
    assert comment["author"] == "Alignak WS"  # Alignak's default author, never the token
    status, body = http("POST", f"{bridge.url}/ws/command", {"command": "disable_svc_notifications",
                                                               "element": "cmd-host/svc"}, auth=ALIGNAK)
    assert body == {"_status": "OK", "_command": "DISABLE_SVC_NOTIFICATIONS;cmd-host;svc"}  # no time given: none shown
    command(bridge, "ENABLE_SVC_NOTIFICATIONS", host_name="cmd-host", service_description="svc")
    wait_service(nagios, notifications_enabled="1")
    http("POST", f"{bridge.url}/command", {"command": "DISABLE_SVC_NOTIFICATIONS", "host": "cmd-host",
                                             "service": "svc"}, auth=ALIGNAK)
    wait_service(nagios, notifications_enabled="0")


def test_metrics_from_the_running_daemon(bridge: BridgeProcess) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    command(bridge, "PROCESS_HOST_CHECK_RESULT", host_name="cmd-host", status_code=0, plugin_output="counted")
    with urllib.request.urlopen(f"{bridge.url}/metrics", timeout=30) as response:  # no auth
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert families["naemon_bridge_engine_up"].samples[0].value == 1
    assert families["naemon_bridge_results_accepted"].samples[0].value >= 1
    assert families["naemon_bridge_results_delivered"].samples[0].value >= 1
