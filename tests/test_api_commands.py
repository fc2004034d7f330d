"""The whole command API through aiohttp's test client with a real FIFO: permissions, throttling, discovery,
OpenAPI, the batch endpoint and Alignak's /command, /event and GET /host."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from bridge.config.model import AuthConfig, Config, EngineConfig, SpoolConfig, User
from bridge.core.permissions import Grants, NamePattern
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.intake import DIALECTS
from tests.conftest import FifoReader, collect

NOW = 1_700_000_000
OBJECTS = "".join(
    f"define host {{\n\thost_name\t{h}\n\t}}\n" for h in ("web1", "web2", "db1")) + "".join(
    f"define service {{\n\thost_name\t{h}\n\tservice_description\t{s}\n\t}}\n"
    for h, s in (("web1", "http"), ("web1", "ftp"), ("web1", "disk-1"), ("db1", "http"))) + \
    "define hostgroup {\n\thostgroup_name\twebservers\n\t}\ndefine contact {\n\tcontact_name\tbob\n\t}\n"
USERS = (
    User("ops", password="x"),
    User("checks", password="x", grants=Grants(commands=("PROCESS_*_CHECK_RESULT",))),
    User("web", password="x", grants=Grants(hosts=(NamePattern.parse("web*"),),
                                            services=(NamePattern.parse("http"), NamePattern.parse("re:disk-\\d+")))),
    User("admin", password="x", grants=Grants(commands=("PROCESS_*", "SHUTDOWN_PROGRAM"))),
    User("web-token-user", token="tok-web", grants=Grants(hosts=(NamePattern.parse("web*"),))),
)


def auth(user: str, password: str = "x") -> dict[str, str]:
    return {"Authorization": encode_basic_auth(user, password)}


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    (tmp_path / "objects.cache").write_text(OBJECTS)
    config = Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo,
                                        objects_cache=tmp_path / "objects.cache"),
                    spool=SpoolConfig(directory=tmp_path / "spool"), users=USERS,
                    auth=AuthConfig(max_failures=3, failure_window=60))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def post(client: TestClient, command: str, user: str, params: dict | None = None):
    return await client.post(f"/api/command/{command}", headers=auth(user), json=params or {})


# --- permissions: each denial path answers 401 (op5) / 403 (Alignak) and writes nothing ---------------------------

DENIED = [
    ("ops", "SHUTDOWN_PROGRAM", {}),  # the process: needs a grant by name
    ("ops", "DISABLE_NOTIFICATIONS", {}),  # the whole engine
    ("ops", "ENABLE_CONTACT_HOST_NOTIFICATIONS", {"contact_name": "bob"}),  # a contact
    ("checks", "ACKNOWLEDGE_HOST_PROBLEM", {"host_name": "web1", "sticky": 2, "notify": 0, "persistent": 0,
                                            "comment": "x"}),  # outside the user's globs
    ("admin", "PROCESS_FILE", {"file_name": "/etc/passwd", "delete": 0}),  # a glob never grants a global command
    ("web", "PROCESS_HOST_CHECK_RESULT", {"host_name": "db1", "status_code": 0}),  # host outside hosts
    ("web", "PROCESS_SERVICE_CHECK_RESULT", {"host_name": "web1", "service_description": "ftp",
                                             "status_code": 0}),  # service outside services
    ("web", "ENABLE_HOSTGROUP_SVC_CHECKS", {"hostgroup_name": "webservers"}),  # a group, for a limited user
    ("web", "DEL_HOST_COMMENT", {"comment_id": 3}),  # names no host the bridge can check
]


@pytest.mark.parametrize("user,command,params", DENIED, ids=[f"{u}-{c}" for u, c, _ in DENIED])
async def test_op5_denials_are_401_and_write_nothing(client: TestClient, reader: FifoReader, user: str,
                                                     command: str, params: dict) -> None:
    response = await post(client, command, user, params)
    assert response.status == 401
    body = await response.json()
    assert body["error"] == "Permission denied" and command in body["full_error"] and user in body["full_error"]
    assert reader.read_lines() == []


ALLOWED = [
    ("ops", "ENABLE_HOSTGROUP_SVC_CHECKS", {"hostgroup_name": "webservers"},
     "ENABLE_HOSTGROUP_SVC_CHECKS;webservers"),
    ("checks", "PROCESS_HOST_CHECK_RESULT", {"host_name": "db1", "status_code": 1, "plugin_output": "x"},
     "PROCESS_HOST_CHECK_RESULT;db1;1;x"),
    ("admin", "SHUTDOWN_PROGRAM", {}, "SHUTDOWN_PROGRAM"),
    ("web", "PROCESS_SERVICE_CHECK_RESULT", {"host_name": "web1", "service_description": "disk-1",
                                             "status_code": 0, "plugin_output": "ok"},
     "PROCESS_SERVICE_CHECK_RESULT;web1;disk-1;0;ok"),
]


@pytest.mark.parametrize("user,command,params,line", ALLOWED, ids=[f"{u}-{c}" for u, c, _, _ in ALLOWED])
async def test_granted_commands_are_written(client: TestClient, reader: FifoReader, user: str, command: str,
                                            params: dict, line: str) -> None:
    response = await post(client, command, user, params)
    assert response.status == 200, await response.text()
    assert await collect(reader, 1) == [f"[{NOW}] {line}".encode()]


async def test_alignak_denial_is_403_with_issues_and_writes_nothing(client: TestClient, reader: FifoReader) -> None:
    response = await client.patch("/host/db1", headers=auth("tok-web", ""), json={"livestate": {"state": "up"}})
    assert response.status == 403
    body = await response.json()
    assert body["_status"] == "ERR" and "db1" in body["_issues"][0]
    response = await client.patch("/host/web1", headers=auth("tok-web", ""), json={"livestate": {"state": "up"}})
    assert (await response.json())["_status"] == "OK"
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;(No output returned from plugin)"
                                        .encode()]


# --- throttling -----------------------------------------------------------------------------------------------------

async def test_failed_logins_are_throttled_per_user_name_and_address(client: TestClient, reader: FifoReader) -> None:
    params = {"host_name": "web1", "status_code": 0}
    response = await post(client, "PROCESS_HOST_CHECK_RESULT", "ops", params)
    assert response.status == 200  # a permission denial or a success is no failed login
    for _ in range(3):
        response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=auth("ops", "wrong"),
                                     json=params)
        assert response.status == 401
    for headers in (auth("ops", "wrong"), auth("ops")):  # even the right password waits now
        response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=headers, json=params)
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert (await response.json())["error"] == "Too many failed logins"
    for _ in range(3):
        response = await client.patch("/host/web1", headers=auth("tok-wrong", ""), json={"livestate": {"state": "up"}})
        assert response.status == 401
    response = await client.patch("/host/web1", headers=auth("tok-wrong", ""), json={"livestate": {"state": "up"}})
    assert response.status == 429 and (await response.json())["_status"] == "ERR"
    response = await client.patch("/host/web1", headers=auth("tok-web", ""), json={"livestate": {"state": "up"}})
    assert response.status == 200  # another user name from the same address is not locked out
    assert len(reader.read_lines()) == 2  # the two good requests


# --- discovery and OpenAPI ------------------------------------------------------------------------------------------

async def test_the_command_list_shows_what_a_user_may_run(client: TestClient) -> None:
    names = {c["name"] for c in (await (await client.get("/api/command", headers=auth("ops"))).json())["commands"]}
    assert "PROCESS_SERVICE_CHECK_RESULT" in names and "ENABLE_HOSTGROUP_SVC_CHECKS" in names
    assert "SHUTDOWN_PROGRAM" not in names and "LOG" not in names  # not granted; not a Nagios command
    names = {c["name"] for c in (await (await client.get("/api/command", headers=auth("checks"))).json())["commands"]}
    assert names == {"PROCESS_SERVICE_CHECK_RESULT", "PROCESS_HOST_CHECK_RESULT"}


async def test_a_command_template_names_types_and_defaults(client: TestClient) -> None:
    response = await client.get("/api/command/SCHEDULE_SVC_DOWNTIME", headers=auth("ops"))
    body = await response.json()
    assert body["command"] == "SCHEDULE_SVC_DOWNTIME" and body["permitted"] is True
    params = {p["name"]: p for p in body["parameters"]}
    assert list(params) == ["host_name", "service_description", "start_time", "end_time", "fixed", "trigger_id",
                            "duration", "author", "comment"]
    assert params["end_time"] == {"name": "end_time", "type": "timestamp", "required": True}
    assert params["start_time"]["default"] == "now" and params["start_time"]["required"] is False
    assert params["duration"]["default"] == "end_time - start_time"
    assert params["author"]["default"] == "the authenticated user's name"
    response = await client.get("/api/command/ACKNOWLEDGE_SVC_PROBLEM_EXPIRE", headers=auth("ops"))
    assert response.status == 404 and "Naemon only" in (await response.json())["full_error"]


async def test_openapi_is_served_without_auth_and_validates(client: TestClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    assert "/api/command/PROCESS_SERVICE_CHECK_RESULT" in document["paths"]
    assert "/api/command/LOG" not in document["paths"]  # the configured engine (Nagios) lacks it


async def test_unknown_command_names_the_closest(client: TestClient) -> None:
    response = await post(client, "ACKNOWLEDGE_SERVICE_PROBLEM", "ops")
    assert response.status == 404
    assert "ACKNOWLEDGE_SVC_PROBLEM" in (await response.json())["full_error"]


# --- downtime defaults and time forms -------------------------------------------------------------------------------

async def test_downtime_defaults_and_relative_times(client: TestClient, reader: FifoReader) -> None:
    response = await post(client, "SCHEDULE_HOST_DOWNTIME", "ops",
                          {"host_name": "web1", "end_time": "+2h", "comment": "patching"})
    assert response.status == 200, await response.text()
    assert await collect(reader, 1) == [
        f"[{NOW}] SCHEDULE_HOST_DOWNTIME;web1;{NOW};{NOW + 7200};1;0;7200;ops;patching".encode()]
    response = await post(client, "SCHEDULE_HOST_DOWNTIME", "ops",
                          {"host_name": "web1", "start_time": "+1h", "end_time": "+30m", "comment": "x"})
    assert response.status == 400 and "end_time" in (await response.json())["full_error"]
    response = await post(client, "SCHEDULE_HOST_DOWNTIME", "ops",
                          {"host_name": "web1", "end_time": "tomorrow", "comment": "x"})
    assert response.status == 400 and "ISO 8601" in (await response.json())["full_error"]


# --- the batch endpoint ---------------------------------------------------------------------------------------------

async def test_batch_results_all_or_nothing(client: TestClient, reader: FifoReader) -> None:
    results = [{"host_name": "web1", "service_description": "http", "status_code": 2, "plugin_output": "down"},
               {"host_name": "web1", "service_description": None, "status_code": "0", "plugin_output": "up",
                "timestamp": NOW - 30},
               {"host_name": "db1", "status_code": 1}]
    response = await client.post("/api/results", headers=auth("ops"), json=results)
    assert (response.status, await response.json()) == (200, {"result": "Successfully submitted 3 results",
                                                              "accepted": 3})
    assert await collect(reader, 3) == [
        f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;2;down".encode(),
        f"[{NOW - 30}] PROCESS_HOST_CHECK_RESULT;web1;0;up".encode(),
        f"[{NOW}] PROCESS_HOST_CHECK_RESULT;db1;1;(No output returned from plugin)".encode()]
    bad = results + [{"host_name": "web1", "status_code": 7}, "x", {"host_name": "a;b", "status_code": 0}]
    response = await client.post("/api/results", headers=auth("ops"), json=bad)
    assert response.status == 400
    message = (await response.json())["full_error"]
    assert "3 of 6 results are invalid" in message
    assert "results[3].status_code" in message and "results[4]" in message and "results[5].host_name" in message
    response = await client.post("/api/results", headers=auth("ops"), json=[
        {"host_name": "web1", "status_code": 0}, {"host_name": "nosuch", "status_code": 0}])
    assert response.status == 400 and "nosuch" in (await response.json())["full_error"]
    response = await client.post("/api/results", headers=auth("web"), json=[
        {"host_name": "web1", "status_code": 0}, {"host_name": "db1", "status_code": 0}])
    assert response.status == 401
    assert reader.read_lines() == []


async def test_batch_names_every_unknown_object_with_its_index(client: TestClient, reader: FifoReader) -> None:
    """Every entry the engine has no object for is named, as invalid entries are, and nothing is written."""
    results = [{"host_name": "web1", "status_code": 0}, {"host_name": "nosuch-1", "status_code": 0},
               {"host_name": "web1", "service_description": "nosuch-svc", "status_code": 0},
               {"host_name": "nosuch-2", "service_description": "http", "status_code": 0}]
    response = await client.post("/api/results", headers=auth("ops"), json=results)
    assert response.status == 400
    assert await response.json() == {"error": "Unknown object", "full_error": (
        "3 of 4 results are invalid, none was submitted: "
        "results[1].host_name: the engine has no host 'nosuch-1'; "
        "results[2].service_description: the engine has no service 'nosuch-svc' on host 'web1'; "
        "results[3].host_name: the engine has no host 'nosuch-2'")}
    # Bad values and unknown objects together: one answer, in the order of the request.
    response = await client.post("/api/results", headers=auth("ops"), json=[*results, {"host_name": "web1",
                                                                                      "status_code": 9}])
    message = (await response.json())["full_error"]
    assert response.status == 400 and message.startswith("4 of 5 results are invalid, none was submitted: ")
    assert [part.split(":")[0] for part in message.split(": ", 1)[1].split("; ")] == [
        "results[1].host_name", "results[2].service_description", "results[3].host_name", "results[4].status_code"]
    assert reader.read_lines() == []


# --- Alignak's other endpoints --------------------------------------------------------------------------------------

async def test_alignak_command_and_event(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/command", headers=auth("ops"), json={
        "command": "acknowledge_svc_problem", "element": "web1/http", "parameters": "2;1;0;ops;on it; really"})
    body = await response.json()
    # Alignak shows "[ts]" only when the client gave the time; the engine always gets it.
    assert body == {"_status": "OK", "_command": "ACKNOWLEDGE_SVC_PROBLEM;web1;http;2;1;0;ops;on it; really"}
    response = await client.post("/ws/event", headers=auth("ops"), json={"host": "web1", "comment": "rebooted",
                                                                         "timestamp": NOW - 5})
    assert (await response.json())["_result"] == [f"[{NOW - 5}] ADD_HOST_COMMENT;web1;1;Alignak WS;rebooted"]
    assert await collect(reader, 2) == [f"[{NOW}] ACKNOWLEDGE_SVC_PROBLEM;web1;http;2;1;0;ops;on it; really".encode(),
                                        f"[{NOW - 5}] ADD_HOST_COMMENT;web1;1;Alignak WS;rebooted".encode()]
    for document, error in (({"host": "web1"}, "Missing command parameter"),
                            ({"command": "DISABLE_HOST_CHECK", "host": "web1", "timestamp": "soon"},
                             "Timestamp must be an integer value")):
        body = await (await client.post("/command", headers=auth("ops"), json=document)).json()
        assert body["_status"] == "ERR" and error in body["_error"]
    response = await client.post("/command", headers=auth("ops"), json={"command": "SHUTDOWN_PROGRAM"})
    assert response.status == 403
    assert reader.read_lines() == []


async def test_alignak_get_host_changes_nothing(client: TestClient, reader: FifoReader) -> None:
    body = await (await client.get("/host/web1", headers=auth("ops"))).json()
    assert body["_status"] == "OK" and [host["name"] for host in body["_result"]] == ["web1"]
    assert (await (await client.get("/ws/host?name=web1", headers=auth("ops"))).json()) == body
    body = await (await client.get("/ws/host/nosuch", headers=auth("ops"))).json()
    assert body == {"_status": "ERR", "_result": [], "_issues": ["Requested host 'nosuch' does not exist"]}
    # A user sees only the hosts their grants cover ("web": hosts web*): another answers as one that does not exist
    assert (await (await client.get("/ws/host/db1", headers=auth("ops"))).json())["_status"] == "OK"
    body = await (await client.get("/ws/host/db1", headers=auth("web"))).json()
    assert body == {"_status": "ERR", "_result": [], "_issues": ["Requested host 'db1' does not exist"]}
    assert (await (await client.get("/ws/host/web1", headers=auth("web"))).json())["_status"] == "OK"
    assert reader.read_lines() == []


# --- what a user limited by grants may see --------------------------------------------------------------------------

async def test_freshness_shows_only_the_objects_the_grants_cover(client: TestClient, reader: FifoReader) -> None:
    results = [{"host_name": h, "service_description": s, "status_code": 0}
               for h, s in (("web1", None), ("web1", "http"), ("web1", "ftp"), ("db1", "http"), ("web2", None))]
    assert (await client.post("/api/results", headers=auth("ops"), json=results)).status == 200
    everything = await (await client.get("/api/freshness", headers=auth("ops"))).json()
    assert len(everything["objects"]) == 5 and everything["counts"] == {"fresh": 5, "stale": 0}
    # "web": hosts web*, services http or disk-N — the grants that guard its submissions
    body = await (await client.get("/api/freshness", headers=auth("web"))).json()
    assert [(o["host_name"], o["service_description"]) for o in body["objects"]] == [
        ("web1", None), ("web1", "http"), ("web2", None)]
    assert body["counts"] == {"fresh": 3, "stale": 0}
    denied = await client.get("/api/freshness?host=db1", headers=auth("web"))
    missing = await client.get("/api/freshness?host=nosuch", headers=auth("web"))
    assert (denied.status, await denied.json()) == (missing.status, await missing.json()) == (
        200, {"objects": [], "counts": {"fresh": 3, "stale": 0}})
    body = await (await client.get("/api/freshness?host=web1&stale=0", headers=auth("tok-web", ""))).json()
    assert [o["service_description"] for o in body["objects"]] == [None, "ftp", "http"]  # hosts web*, any service
    response = await client.get("/api/freshness?stael=1", headers=auth("ops"))
    assert response.status == 400 and (await response.json())["error"] == "Invalid parameter 'stael'"
    assert len(await collect(reader, 5)) == 5


# --- times the engine cannot take -----------------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "+999999999999999999999999d"}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "+50000w"}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "0001-01-01T00:00+14:00"}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"start_time": "0001-01-01T00:00+14:00", "end_time": "+1h"}, "start_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "0001-01-01T00:00"}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"start_time": -5, "end_time": "+1h"}, "start_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "2100-01-02T00:00Z"}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": 10**11}, "end_time"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "+1h", "fixed": 0, "duration": 10**11}, "duration"),
    ("SCHEDULE_HOST_DOWNTIME", {"end_time": "+1h", "fixed": 0, "duration": 0}, "duration"),
    ("SCHEDULE_HOST_CHECK", {"check_time": "9999-12-31T23:59"}, "check_time"),
]


@pytest.mark.parametrize("command,params,field", OUT_OF_RANGE, ids=[str(p) for _, p, _ in OUT_OF_RANGE])
async def test_times_outside_what_the_engine_takes_are_refused(client: TestClient, reader: FifoReader, command: str,
                                                               params: dict, field: str) -> None:
    comment = {"comment": "x"} if "DOWNTIME" in command else {}
    response = await post(client, command, "ops", {"host_name": "web1", **comment, **params})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == f"Invalid parameter '{field}'", body
    assert reader.read_lines() == []


async def test_times_up_to_2100_and_long_fixed_downtimes_pass(client: TestClient, reader: FifoReader) -> None:
    response = await post(client, "SCHEDULE_HOST_DOWNTIME", "ops", {
        "host_name": "web1", "end_time": "2099-12-31T00:00Z", "comment": "until the end", "duration": 10**11})
    assert response.status == 200, await response.text()  # fixed: the engine ignores the duration
    response = await post(client, "SCHEDULE_HOST_DOWNTIME", "ops", {
        "host_name": "web1", "end_time": "+1h", "fixed": 0, "duration": 24 * 365, "comment": "a year"})  # hours
    assert response.status == 200, await response.text()
    assert len(await collect(reader, 2)) == 2


async def test_batch_and_alignak_timestamps_outside_the_range_are_refused(client: TestClient,
                                                                         reader: FifoReader) -> None:
    response = await client.post("/api/results", headers=auth("ops"), json=[
        {"host_name": "web1", "status_code": 0, "timestamp": 1e11}])
    assert response.status == 400
    assert "results[0].timestamp: must be a time from 1970 to 2100" in (await response.json())["full_error"]
    body = await (await client.patch("/host/web1", headers=auth("ops"), json={
        "livestate": {"state": "up", "timestamp": 1e11}})).json()
    assert body["_status"] == "ERR" and "livestate timestamp must be a time from 1970 to 2100" in body["_issues"][0]
    for path, document in (("/event", {"host": "web1", "comment": "x", "timestamp": "99999999999"}),
                           ("/command", {"command": "DISABLE_HOST_CHECK", "host": "web1",
                                         "timestamp": "99999999999"})):
        body = await (await client.post(path, headers=auth("ops"), json=document)).json()
        error = body["_issues"][0] if path == "/event" else body["_error"]  # as Alignak answers each
        assert body["_status"] == "ERR" and error.startswith("timestamp: must be a time from 1970"), body
    assert reader.read_lines() == []


@pytest.mark.parametrize("service", ['""', "0", "false", "1e-400", "null"])
async def test_an_empty_event_service_makes_a_host_comment(client: TestClient, reader: FifoReader,
                                                           service: str) -> None:
    """As Alignak (its ``if service_name:``), with its answer: the line and nothing else."""
    response = await client.post("/event", headers={**auth("ops"), "Content-Type": "application/json"},
                                 data=f'{{"host": "web1", "service": {service}, "comment": "rebooted"}}')
    body = await response.json()
    assert body == {"_status": "OK", "_result": ["ADD_HOST_COMMENT;web1;1;Alignak WS;rebooted"]}, body
    assert await collect(reader, 1) == [f"[{NOW}] ADD_HOST_COMMENT;web1;1;Alignak WS;rebooted".encode()]
