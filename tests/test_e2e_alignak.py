"""Alignak WS clients unchanged, end to end: the requests and assertions of alignak-module-ws's own test suite
(test/test_module*.py, 1.7.7) replayed against the daemon as a subprocess in front of a real Nagios 4, with a
plain ``requests.Session()`` as upstream's tests and host-simulator.py use, each effect read back from status.dat.

Upstream configures its module per test (set_timestamp, give_result, give_feedback, feedback_*, ignore_unknown_*);
each bridge below is configured as the upstream test it replays. What cannot apply beside Nagios is listed in
docs/research/alignak-module-ws.md with its reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.core.alignak import ALIGNAK_SAMPLE_FEEDBACK_HOST
from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ROOT, BridgeProcess, bridge_config, start_bridge
from tests.helpers import read_blocks, read_status, wait_for

JSON = {"Content-Type": "application/json"}
ADMIN = {"username": "admin", "password": "admin"}
WS_TOKEN = "1508935627404-a0e1e7b8-8eb3-4dc3-9cd5-a0bf1b8a3d1f"
USERS = ('[[users]]\nname = "admin"\npassword = "admin"\n'
         f'[[users]]\nname = "reader"\ntoken = "{WS_TOKEN}"\n'
         '[[users]]\nname = "limited"\npassword = "limited"\nhosts = ["test_host_*"]\n')
# test_module_host.py's configuration for most of its tests
UPSTREAM_TESTS = ('[alignak]\nset_timestamp = false\ngive_result = true\ngive_feedback = 0\n'
                  'ignore_unknown_host = false\nignore_unknown_service = false\n')
# test_module_zzz_host: feedback for the host and its services, with the module's sample property lists
FEEDBACK_SERVICE = [p for p in ALIGNAK_SAMPLE_FEEDBACK_HOST if p != "location"]
FEEDBACK = ('[alignak]\nset_timestamp = false\ngive_result = true\ngive_feedback = 2\n'
            f'feedback_host = {json.dumps(",".join(ALIGNAK_SAMPLE_FEEDBACK_HOST))}\n'
            f'feedback_service = {json.dumps(FEEDBACK_SERVICE)}\n'
            'ignore_unknown_host = false\nignore_unknown_service = false\n')


def _bridge(nagios: NagiosSandbox, folder: Path, alignak: str) -> Iterator[BridgeProcess]:
    config = bridge_config(folder / "naemon-bridge.toml", nagios, known_objects=True, extra=alignak, users=USERS)
    process = start_bridge(config)
    process.wait_listening()
    yield process
    assert process.stop() == 0, process.log_text()


@pytest.fixture(scope="module")
def ws(nagios: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from (f"{b.url}/ws" for b in _bridge(nagios, tmp_path_factory.mktemp("ws"), UPSTREAM_TESTS))


@pytest.fixture(scope="module")
def ws_feedback(nagios: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from (f"{b.url}/ws" for b in _bridge(nagios, tmp_path_factory.mktemp("ws-feedback"), FEEDBACK))


@pytest.fixture(scope="module")
def ws_defaults(nagios: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from (f"{b.url}/ws" for b in _bridge(nagios, tmp_path_factory.mktemp("ws-defaults"), ""))


def logged_in(ws: str, credentials: dict[str, str] = ADMIN) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{ws}/login", json=credentials, headers=JSON)
    assert response.status_code == 200 and response.json()["_status"] == "OK", response.text
    return session


def status_of(nagios: NagiosSandbox, host: str, service: str | None = None, **expected: str) -> dict[str, str]:
    def current() -> dict[str, str] | None:
        found = read_status(nagios.status_file).get((host, service), {})
        return found if found and all(found.get(k) == v for k, v in expected.items()) else None
    return wait_for(current, what=f"{host}/{service} to show {expected} in status.dat")


def patch(session: requests.Session, ws: str, data: object, path: str = "/host") -> dict:
    response = session.patch(f"{ws}{path}", json=data, headers=JSON)
    assert response.status_code == 200, response.text
    return response.json()


# -- test_module.py: the WS root, login, logout -------------------------------------------------------------------

def test_module_basic_ws_login_and_endpoints(ws: str) -> None:
    assert requests.get(ws).status_code == 401
    for endpoint in ("host", "command", "event"):
        assert requests.get(f"{ws}/{endpoint}").status_code == 401
    response = requests.get(ws, auth=("admin", "admin"))
    assert response.status_code == 200
    endpoints = response.json()
    assert endpoints == ["api", "api_full", "are_you_alive", "command", "event", "host", "index", "login", "logout"]
    assert requests.post(f"{ws}/login", json={}, headers=JSON).json() == {
        "_status": "ERR", "_issues": ["You must POST parameters on this endpoint."]}
    assert requests.post(f"{ws}/login", json={"username": None, "password": None}, headers=JSON).json() == {
        "_status": "ERR", "_issues": ["Missing username parameter."]}
    assert requests.post(f"{ws}/login", json={"username": "admin", "password": "fake"}, headers=JSON).json() == {
        "_status": "ERR", "_issues": ["Access denied."]}
    # A ':' cannot be in a basic-auth name: refused like any wrong login, not answered 500
    assert requests.post(f"{ws}/login", json={"username": "ad:min", "password": "admin"}, headers=JSON).json() == {
        "_status": "ERR", "_issues": ["Access denied."]}
    response = requests.post(f"{ws}/login", json=ADMIN, headers=JSON)
    assert response.status_code == 200
    token = response.json()["_result"][0]
    # Login with an existing token as the user name, then with basic authentication
    assert requests.post(f"{ws}/login", json={"username": token, "password": None}, headers=JSON).json() == {
        "_status": "OK", "_result": [token]}
    assert requests.post(f"{ws}/login", json={}, headers=JSON, auth=(token, "")).json() == {
        "_status": "OK", "_result": [token]}
    answer = requests.post(f"{ws}/login", json={}, headers=JSON, auth=("admin", "admin")).json()
    assert answer["_status"] == "OK" and len(answer["_result"]) == 1  # a new session: tokens are per login
    # A configured token logs in as itself (upstream: the backend token)
    assert requests.post(f"{ws}/login", json={"username": WS_TOKEN, "password": None}, headers=JSON).json() == {
        "_status": "OK", "_result": [WS_TOKEN]}
    # The session token works as the basic-auth user name, as a backend token does
    assert requests.get(f"{ws}/are_you_alive", auth=(token, "")).json() == "Yes I am :)"
    for endpoint in endpoints:
        assert requests.get(f"{ws}/{endpoint}", auth=("admin", "admin")).status_code == 200, endpoint
    full = requests.get(f"{ws}/api_full", auth=("admin", "admin")).json()
    assert set(full) == {*endpoints, "side_note"} and full["host"]["doc"] == "Declare an host and its data"


def test_module_authorized_session_then_logout(ws: str) -> None:
    session = logged_in(ws)
    cookie = next(iter(session.cookies))
    assert cookie.name == "web-services" and cookie.has_nonstandard_attr("HttpOnly")
    assert session.get(ws).status_code == 200
    for endpoint in session.get(ws).json():
        if endpoint != "logout":
            assert session.get(f"{ws}/{endpoint}").status_code == 200, endpoint
    response = session.get(f"{ws}/logout")
    assert (response.status_code, response.json()) == (200, {"_status": "OK", "_result": "Logged out"})
    assert session.get(f"{ws}/host").status_code == 401  # the session is gone
    assert requests.get(f"{ws}/logout").json() == {"_status": "OK", "_result": "Logged out"}  # no session: fine


def test_module_unauthorization_bad_token(ws: str) -> None:
    response = requests.patch(f"{ws}/host", json={"name": "new_host_1"}, headers=JSON, auth=("bad-token", ""))
    assert response.status_code == 401 and response.json()["_status"] == "ERR"


# -- test_module_host.py: test_module_zzz_host -----------------------------------------------------------------

def test_module_host_document_answers(ws: str, nagios: NagiosSandbox) -> None:
    session = logged_in(ws)
    assert session.post(f"{ws}/host").status_code == 415
    assert session.put(f"{ws}/host").status_code == 415
    response = session.get(f"{ws}/host")
    assert response.status_code == 200
    assert response.json() == {"_status": "ERR", "_result": "", "_issues": ["Missing targeted element."]}
    assert patch(session, ws, {}) == {"_status": "ERR", "_error": "You must send parameters on this endpoint."}
    assert patch(session, ws, {"fake": ""}, "/host/unknown_host") == {
        "_status": "ERR", "_result": ["unknown_host is alive :)"],
        "_issues": ["Requested host 'unknown_host' does not exist. Note that host creation is not allowed."]}
    alive = {"_status": "OK", "_result": ["test_host_0 is alive :)"]}
    assert patch(session, ws, {"fake": ""}, "/host/test_host_0") == alive
    assert patch(session, ws, {"name": "test_host_0"}) == alive
    assert patch(session, ws, {"name": "test_host_0"}, "/host/other_host") == alive  # the body's name wins
    assert patch(session, ws, {"fake": "test_host"}) == {
        "_status": "ERR", "_result": "", "_issues": ["Missing targeted element."]}
    assert patch(session, ws, {"livestate": "", "name": "test_host_0"}) == alive
    livestate = {"output": "Output...", "long_output": "Long output...", "perf_data": "'counter'=1"}
    assert patch(session, ws, {"name": "test_host_0", "livestate": livestate}) == {
        "_status": "ERR", "_result": ["test_host_0 is alive :)"], "_issues": ["Missing state in the livestate."]}
    assert patch(session, ws, {"name": "test_host_0", "livestate": {"state": "", **livestate}}) == {
        "_status": "ERR", "_result": ["test_host_0 is alive :)"],
        "_issues": ["Host state must be UP, DOWN or UNREACHABLE, and not ''."]}
    assert patch(session, ws, {"name": "test_host_0", "livestate": {"state": "DOWN", **livestate}}) == {
        "_status": "OK", "_result": ["test_host_0 is alive :)",
                                     "PROCESS_HOST_CHECK_RESULT;test_host_0;1;Output...|'counter'=1\nLong output..."]}
    host = status_of(nagios, "test_host_0", current_state="1")
    assert (host["plugin_output"], host["long_plugin_output"], host["performance_data"]) == (
        "Output...", "Long output...", "'counter'=1")
    services = [{"name": f"test_ok_{n}", "livestate": {"state": state, "output": f"Output {n}",
                                                       "long_output": f"Long output {n}",
                                                       "perf_data": f"'counter'={n}"}}
                for n, state in enumerate(("ok", "warning", "critical"))]
    answer = patch(session, ws, {"name": "test_host_0", "livestate": {"state": "up", **livestate},
                                 "services": services})
    assert answer == {"_status": "OK", "_result": [
        "test_host_0 is alive :)",
        "PROCESS_HOST_CHECK_RESULT;test_host_0;0;Output...|'counter'=1\nLong output...",
        "PROCESS_SERVICE_CHECK_RESULT;test_host_0;test_ok_0;0;Output 0|'counter'=0\nLong output 0",
        "PROCESS_SERVICE_CHECK_RESULT;test_host_0;test_ok_1;1;Output 1|'counter'=1\nLong output 1",
        "PROCESS_SERVICE_CHECK_RESULT;test_host_0;test_ok_2;2;Output 2|'counter'=2\nLong output 2"]}
    status_of(nagios, "test_host_0", current_state="0")
    for n in range(3):
        status_of(nagios, "test_host_0", f"test_ok_{n}", current_state=str(n), plugin_output=f"Output {n}")
    response = session.get(f"{ws}/logout")
    assert response.json() == {"_status": "OK", "_result": "Logged out"}


def test_module_host_feedback(ws_feedback: str, nagios: NagiosSandbox) -> None:
    """test_module_zzz_host with give_feedback 2 and the module's sample property lists: the properties the engine
    has (location and _overall_state_id are the backend's), the services as a list of dicts with their name."""
    session = logged_in(ws_feedback)
    answer = patch(session, ws_feedback, {"name": "ws_feedback_0", "livestate": {"state": "up", "output": "o"},
                                          "services": [{"name": "test_ok_0", "livestate": {"state": "ok"}},
                                                       {"name": "test_ok_1", "livestate": {"state": "warning"}}]})
    service = {"alias": "", "notes": "", "active_checks_enabled": False, "max_check_attempts": 1,
               "check_interval": 5.0, "retry_interval": 1.0, "passive_checks_enabled": True,
               "check_freshness": False, "freshness_state": "c", "freshness_threshold": 0}
    assert answer["_feedback"] == {
        "name": "ws_feedback_0", "alias": "up_0", "notes": "none", "active_checks_enabled": False,
        "max_check_attempts": 1, "check_interval": 5.0, "retry_interval": 1.0, "passive_checks_enabled": True,
        "check_freshness": False, "freshness_state": "d", "freshness_threshold": 0,
        "services": [{"name": "test_ok_0", **service}, {"name": "test_ok_1", **service}]}
    status_of(nagios, "ws_feedback_0", "test_ok_1", current_state="1")
    # An ERR answer keeps the greeting and carries _feedback: {} (the service with an issue gives none)
    answer = patch(session, ws_feedback, {"name": "ws_feedback_0",
                                          "services": [{"name": "test_ok_2", "livestate": {"state": "bad"}}]})
    assert answer == {"_status": "ERR", "_result": ["ws_feedback_0 is alive :)"], "_feedback": {},
                      "_issues": ["Service test_ok_2 state must be OK, WARNING, CRITICAL, UNKNOWN or UNREACHABLE, "
                                  "and not BAD."]}


def test_module_defaults_give_the_host_name_only(ws_defaults: str, nagios: NagiosSandbox) -> None:
    """alignak-module-ws's defaults: give_result 0, give_feedback 1 with an empty feedback_host."""
    session = logged_in(ws_defaults)
    answer = patch(session, ws_defaults, {"name": "ws_defaults_0", "livestate": {"state": "down", "output": "x"}})
    assert answer == {"_status": "OK", "_feedback": {"name": "ws_defaults_0"}}
    status_of(nagios, "ws_defaults_0", current_state="1", plugin_output="x")


# -- partial application, as update_host / update_service do it -------------------------------------------------

def test_module_partial_application(ws: str, nagios: NagiosSandbox) -> None:
    session = logged_in(ws)
    answer = patch(session, ws, {"name": "ws_partial_0", "livestate": {"state": "down", "output": "host part"},
                                 "services": [{"name": "test_ok_0", "livestate": {"state": "XXX"}},
                                              {"name": "test_ok_1", "livestate": {"state": "critical",
                                                                                  "output": "valid part"}},
                                              {"livestate": {"state": "ok"}},
                                              {"name": "unknown_service", "livestate": {"state": "ok"}}]})
    assert answer == {"_status": "ERR", "_result": [
        "ws_partial_0 is alive :)", "PROCESS_HOST_CHECK_RESULT;ws_partial_0;1;host part",
        "PROCESS_SERVICE_CHECK_RESULT;ws_partial_0;test_ok_1;2;valid part"], "_issues": [
        "Service test_ok_0 state must be OK, WARNING, CRITICAL, UNKNOWN or UNREACHABLE, and not XXX.",
        "A service does not have a 'name' property",
        "Requested service 'ws_partial_0/unknown_service' does not exist. Note that service creation is not allowed."]}
    # exactly what _result lists was applied
    status_of(nagios, "ws_partial_0", current_state="1", plugin_output="host part")
    status_of(nagios, "ws_partial_0", "test_ok_1", current_state="2", plugin_output="valid part")
    assert read_status(nagios.status_file)[("ws_partial_0", "test_ok_0")]["has_been_checked"] == "0"


# -- test_module_host.py: test_module_zzz_host_enable_disable ----------------------------------------------------

def test_module_host_enable_disable(ws: str, nagios: NagiosSandbox) -> None:
    session = logged_in(ws)
    host = "ws_flags_0"
    # Flags that are not JSON booleans are ignored
    assert patch(session, ws, {"name": host, "active_checks_enabled": "", "passive_checks_enabled": "1"}) == {
        "_status": "OK", "_result": [f"{host} is alive :)"]}
    # The sandbox's hosts: active checks off, passive on
    assert patch(session, ws, {"name": host, "active_checks_enabled": False, "passive_checks_enabled": True}) == {
        "_status": "OK", "_result": [f"{host} is alive :)", f"Host '{host}' unchanged."]}
    assert patch(session, ws, {"name": host, "active_checks_enabled": True, "passive_checks_enabled": False}) == {
        "_status": "OK", "_result": [
            f"{host} is alive :)", f"Host {host} active checks will be enabled.",
            f"Sent external command: ENABLE_HOST_CHECK;{host}.", f"Host {host} passive checks will be disabled.",
            f"Sent external command: DISABLE_PASSIVE_HOST_CHECKS;{host}.", f"Host '{host}' updated."]}
    status_of(nagios, host, active_checks_enabled="1", passive_checks_enabled="0")
    assert patch(session, ws, {"name": host, "active_checks_enabled": False, "passive_checks_enabled": True}) == {
        "_status": "OK", "_result": [
            f"{host} is alive :)", f"Host {host} active checks will be disabled.",
            f"Sent external command: DISABLE_HOST_CHECK;{host}.", f"Host {host} passive checks will be enabled.",
            f"Sent external command: ENABLE_PASSIVE_HOST_CHECKS;{host}.", f"Host '{host}' updated."]}
    status_of(nagios, host, active_checks_enabled="0", passive_checks_enabled="1")
    answer = patch(session, ws, {"name": host, "active_checks_enabled": False, "passive_checks_enabled": True,
                                 "services": [
                                     {"name": "test_ok_0", "active_checks_enabled": True,
                                      "passive_checks_enabled": True},
                                     {"name": "test_ok_1", "active_checks_enabled": False,
                                      "passive_checks_enabled": False},
                                     {"name": "test_ok_2", "active_checks_enabled": True,
                                      "passive_checks_enabled": False}]})
    assert answer == {"_status": "OK", "_result": [
        f"{host} is alive :)",
        f"Service {host}/test_ok_0 active checks will be enabled.",
        f"Sent external command: ENABLE_SVC_CHECK;{host};test_ok_0.",
        f"Service '{host}/test_ok_0' updated",
        f"Service {host}/test_ok_1 passive checks will be disabled.",
        f"Sent external command: DISABLE_PASSIVE_SVC_CHECKS;{host};test_ok_1.",
        f"Service '{host}/test_ok_1' updated",
        f"Service {host}/test_ok_2 active checks will be enabled.",
        f"Sent external command: ENABLE_SVC_CHECK;{host};test_ok_2.",
        f"Service {host}/test_ok_2 passive checks will be disabled.",
        f"Sent external command: DISABLE_PASSIVE_SVC_CHECKS;{host};test_ok_2.",
        f"Service '{host}/test_ok_2' updated",
        f"Host '{host}' unchanged."]}
    status_of(nagios, host, "test_ok_0", active_checks_enabled="1", passive_checks_enabled="1")
    status_of(nagios, host, "test_ok_1", active_checks_enabled="0", passive_checks_enabled="0")
    status_of(nagios, host, "test_ok_2", active_checks_enabled="1", passive_checks_enabled="0")


# -- test_module_host.py: test_module_zzz_host_variables, _variables_as_array; tools/host_services_2.json --------

def test_module_host_variables(ws: str, nagios: NagiosSandbox) -> None:
    session = logged_in(ws)
    host = "ws_vars_0"
    answer = patch(session, ws, {"name": host, "variables": {"test1": "string", "test2": 12, "test3": 15055.0,
                                                             "list": ["a", 1], "dict": {"k": [1, 2]}}})
    assert answer == {"_status": "OK", "_result": [f"{host} is alive :)", f"Host '{host}' updated."]}
    status = status_of(nagios, host, _TEST1="1;string")
    assert (status["_TEST2"], status["_TEST3"], status["_LIST"], status["_DICT"]) == (
        "1;12", "1;15055.0", '1;["a",1]', '1;{"k":[1,2]}')
    assert patch(session, ws, {"name": host, "variables": {"test1": "string", "list": ["a", 1]}}) == {
        "_status": "OK", "_result": [f"{host} is alive :)", f"Host '{host}' unchanged."]}
    # What Naemon/Nagios cannot do is an issue; the rest is applied
    answer = patch(session, ws, {"name": host, "variables": {"test1": "__delete__", "new_one": "x", "test2": "13"},
                                 "services": [{"name": "test_ok_0", "variables": {"test1": "svc"}}]})
    assert answer == {"_status": "ERR", "_result": [f"{host} is alive :)", f"Service '{host}/test_ok_0' updated",
                                                    f"Host '{host}' updated."], "_issues": [
        f"Host '{host}': variable '_TEST1' cannot be deleted: the engine cannot remove custom variables at run time.",
        f"Host '{host}': variable '_NEW_ONE' does not exist and cannot be created: the engine only changes custom "
        "variables an object already defines."]}
    status_of(nagios, host, _TEST2="1;13")
    status_of(nagios, host, "test_ok_0", _TEST1="1;svc")
    assert patch(session, ws, {"name": host, "variables": ""}) == {"_status": "OK", "_result": [f"{host} is alive :)"]}


def test_tools_host_services_2_is_applied_whole(ws: str, nagios: NagiosSandbox) -> None:
    """The repository's own sample: a Packages list among the variables, a template, three services."""
    document = json.loads((ROOT / "tests" / "data" / "alignak_host_services_2.json").read_text())
    session = logged_in(ws)
    answer = patch(session, ws, document)
    assert answer["_status"] == "OK", answer
    assert answer["_result"][-1] == "Host 'master-0001' updated."
    packages = json.dumps(document["variables"]["Packages"], separators=(",", ":"))
    status_of(nagios, "master-0001", _PACKAGES=f"1;{packages}", _MODEL="1;NORTH-HOST",
              plugin_output="master-0001 is alive (9d 9h 33m 03s)")
    for service in ("dev_Network", "soft_cwrsync", "soft_Inventory"):
        status_of(nagios, "master-0001", service, has_been_checked="1", current_state="0")


# -- test_module_host_livestate.py: livestate lists and timestamps ----------------------------------------------

def test_module_host_livestate_list_and_timestamps(ws: str, nagios: NagiosSandbox) -> None:
    session = logged_in(ws)
    now = int(time.time())
    answer = patch(session, ws, {"name": "test_host_0", "livestate": [
        {"state": "up", "output": "first", "timestamp": now - 10}, {"state": "up", "output": "second",
                                                                   "timestamp": "ABC"}]})
    # A time the client gives is shown; "ABC" is now, and with set_timestamp 0 shown without one
    assert answer == {"_status": "OK", "_result": [
        "test_host_0 is alive :)", f"[{now - 10}] PROCESS_HOST_CHECK_RESULT;test_host_0;0;first",
        "PROCESS_HOST_CHECK_RESULT;test_host_0;0;second"]}
    status_of(nagios, "test_host_0", plugin_output="second")


# -- test_module_host_get.py ----------------------------------------------------------------------------------

def test_module_host_get(ws: str) -> None:
    assert requests.get(f"{ws}/host").status_code == 401
    session = logged_in(ws)
    missing = {"_status": "ERR", "_result": [], "_issues": ["Requested host 'new_host_2' does not exist"]}
    assert session.get(f"{ws}/host", params={"name": "new_host_2"}).json() == missing
    assert session.get(f"{ws}/host/new_host_2").json() == missing
    for answer in (session.get(f"{ws}/host", params={"name": "test_host_0"}).json(),
                   session.get(f"{ws}/host/test_host_0").json()):
        assert answer["_status"] == "OK" and answer["_result"][0]["name"] == "test_host_0"
        assert answer["_result"][0]["alias"] == "up_0"
    # A user sees only the hosts their grants cover (limited: test_host_*)
    limited = logged_in(ws, {"username": "limited", "password": "limited"})
    assert limited.get(f"{ws}/host/test_host_0").json()["_status"] == "OK"
    assert limited.get(f"{ws}/host/ws_vars_0").json() == {
        "_status": "ERR", "_result": [], "_issues": ["Requested host 'ws_vars_0' does not exist"]}


# -- test_module_command.py ------------------------------------------------------------------------------------

def test_module_command(ws: str, nagios: NagiosSandbox) -> None:
    assert requests.get(f"{ws}/command").status_code == 401
    session = logged_in(ws)
    response = session.get(f"{ws}/command")
    assert (response.status_code, response.json()) == (
        200, {"_status": "ERR", "_error": "You must only POST on this endpoint."})
    assert session.put(f"{ws}/command").status_code == 415
    assert session.post(f"{ws}/command", data=b"", headers=JSON).status_code == 400
    def post(data: dict) -> dict:
        response = session.post(f"{ws}/command", json=data, headers=JSON)
        assert response.status_code == 200
        return response.json()
    assert post({}) == {"_status": "ERR", "_error": "You must POST parameters on this endpoint."}
    assert post({"element": "ws_flags_0", "parameters": "abc;1"}) == {
        "_status": "ERR", "_error": "Missing command parameter"}
    assert post({"command": "disable_svc_notifications", "timestamp": "text", "element": "ws_flags_0/test_ok_0"}) \
        == {"_status": "ERR", "_error": "Timestamp must be an integer value"}
    now = int(time.time())
    assert post({"command": "disable_svc_notifications", "timestamp": str(now), "element": "ws_flags_0;test_ok_0"}) \
        == {"_status": "OK", "_command": f"[{now}] DISABLE_SVC_NOTIFICATIONS;ws_flags_0;test_ok_0"}
    assert post({"command": "enable_svc_notifications", "element": "ws_flags_0/test_ok_1"}) == {
        "_status": "OK", "_command": "ENABLE_SVC_NOTIFICATIONS;ws_flags_0;test_ok_1"}
    assert post({"command": "Add_svc_comment", "host": "ws_flags_0", "service": "test_ok_2",
                 "parameters": "1;me;a;b"}) == {
        "_status": "OK", "_command": "ADD_SVC_COMMENT;ws_flags_0;test_ok_2;1;me;a;b"}
    status_of(nagios, "ws_flags_0", "test_ok_0", notifications_enabled="0")
    wait_for(lambda: [c for c in read_blocks(nagios.status_file, "servicecomment")
                      if c.get("comment_data") == "a;b" and c.get("author") == "me"], what="the comment")


# -- test_module_event.py --------------------------------------------------------------------------------------

def test_module_event(ws: str, nagios: NagiosSandbox) -> None:
    assert requests.get(f"{ws}/event").status_code == 401
    session = logged_in(ws)
    response = session.get(f"{ws}/event")
    assert (response.status_code, response.json()) == (
        200, {"_status": "ERR", "_issues": ["You must only POST on this endpoint."]})
    def post(data: dict) -> dict:
        response = session.post(f"{ws}/event", json=data, headers=JSON)
        assert response.status_code == 200
        return response.json()
    assert post({}) == {"_status": "ERR", "_issues": ["You must POST parameters on this endpoint."]}
    assert post({"fake": ""}) == {"_status": "ERR", "_issues": ["Missing host and/or service parameter."]}
    assert post({"host": "ws_vars_0"}) == {
        "_status": "ERR", "_issues": ["Missing comment. If you do not have any comment, do not comment ;)"]}
    assert post({"host": "ws_vars_0", "comment": "My comment"}) == {
        "_status": "OK", "_result": ["ADD_HOST_COMMENT;ws_vars_0;1;Alignak WS;My comment"]}
    now = int(time.time())
    assert post({"timestamp": now, "host": "ws_vars_0", "author": "Me", "comment": "My comment"}) == {
        "_status": "OK", "_result": [f"[{now}] ADD_HOST_COMMENT;ws_vars_0;1;Me;My comment"]}
    assert post({"host": "ws_vars_0", "service": "test_ok_0", "comment": "My comment"}) == {
        "_status": "OK", "_result": ["ADD_SVC_COMMENT;ws_vars_0;test_ok_0;1;Alignak WS;My comment"]}
    comments = wait_for(lambda: [c for c in read_blocks(nagios.status_file, "hostcomment")
                                 if c.get("host_name") == "ws_vars_0"] if len(
        [c for c in read_blocks(nagios.status_file, "hostcomment") if c.get("host_name") == "ws_vars_0"]) == 2
        else None, what="both host comments")
    assert sorted(c["author"] for c in comments) == ["Alignak WS", "Me"]
    wait_for(lambda: [c for c in read_blocks(nagios.status_file, "servicecomment")
                      if c.get("host_name") == "ws_vars_0" and c.get("author") == "Alignak WS"], what="comment")


# -- test_module_no_backend.py and test/host-simulator.py: log in once, then the session only --------------------

def test_host_simulator_session_flow(ws: str, nagios: NagiosSandbox) -> None:
    session = requests.Session()
    response = session.post(f"{ws}/login", json=ADMIN, headers=JSON)
    assert response.status_code == 200
    assert "Authorization" not in session.headers
    data = {"name": "test_host_0", "livestate": {"state": "UP", "output": "Output...",
                                                 "long_output": "Long output...", "perf_data": "'counter'=1"},
            "services": [{"name": "test_ok_0", "livestate": {"state": "OK", "output": "simulated"}}]}
    assert patch(session, ws, data) == {"_status": "OK", "_result": [
        "test_host_0 is alive :)",
        "PROCESS_HOST_CHECK_RESULT;test_host_0;0;Output...|'counter'=1\nLong output...",
        "PROCESS_SERVICE_CHECK_RESULT;test_host_0;test_ok_0;0;simulated"]}
    status_of(nagios, "test_host_0", "test_ok_0", plugin_output="simulated")
