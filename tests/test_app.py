"""The HTTP app through aiohttp's test client, with a real FIFO read by the test as the engine would."""

from __future__ import annotations

import json
import os
from pathlib import Path

import bcrypt
import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from bridge.config.model import AlignakConfig, Config, EngineConfig, SpoolConfig, User
from bridge.core.alignak import FEEDBACK_PROPERTIES
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.http.credentials import hash_password
from bridge.intake import DIALECTS
from tests.conftest import FifoReader, collect, fifo_config

NOW = 1_700_000_000
OBJECTS = """define host {
\thost_name\tweb1
\talias\tWeb server
\tactive_checks_enabled\t0
\tpassive_checks_enabled\t1
\tcheck_freshness\t1
\tfreshness_threshold\t600
\tmax_check_attempts\t3
\t_OWNER\tops
\t}

define service {
\thost_name\tweb1
\tservice_description\thttp
\tdisplay_name\tHTTP
\tpassive_checks_enabled\t1
\t}
"""
USER = ("alice", "secret")


def creds(auth: tuple[str, str] | None) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(*auth)} if auth is not None else {}

TOKEN = ("tok-123", "")


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    config = fifo_config(
        fifo, tmp_path, OBJECTS,
        (User("alice", password="secret"), User("hashed", password_hash=hash_password("pw")),
         User("bcrypted", password_hash=bcrypt.hashpw(b"pw2", bcrypt.gensalt(4)).decode()),
         User("readers", token="tok-123"), User("jürgen", password="pässwörd")),
        # alignak-module-ws's test configuration: every line in _result, every property the bridge has
        alignak=AlignakConfig(give_result=True, give_feedback=2, feedback_host=FEEDBACK_PROPERTIES,
                              feedback_service=FEEDBACK_PROPERTIES),
    )
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def test_op5_result_reaches_the_pipe(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=creds(USER), json={
        "host_name": "web1", "service_description": "http", "status_code": "2", "plugin_output": "down"})
    assert response.status == 200
    assert await response.json() == {"result": "Successfully submitted PROCESS_SERVICE_CHECK_RESULT"}
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;2;down".encode()]


async def test_curl_d_with_json_but_no_json_content_type_still_works(client: TestClient, reader: FifoReader) -> None:
    body = json.dumps({"host_name": "web1", "status_code": 0, "plugin_output": "up"})
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", data=body,
                                 headers={**creds(USER), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 200, await response.text()
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;up".encode()]


@pytest.mark.parametrize("auth", [("hashed", "pw"), ("bcrypted", "pw2"),
                                  ("alice$LDAP", "secret"), ("jürgen", "pässwörd")])
async def test_hashed_passwords_and_op5_login_suffixes(client: TestClient, auth: tuple[str, str]) -> None:
    for _ in range(2):  # the second time from the verified-credential cache
        response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(auth),
                                     json={"host_name": "web1", "status_code": 0})
        assert response.status == 200, await response.text()


@pytest.mark.parametrize("auth", [None, ("hashed", "wrong"), ("alice", "Secret"),
                                  ("tok-124", ""), ("tok-123", "x")])
async def test_bad_credentials_get_401_and_write_nothing(client: TestClient, reader: FifoReader,
                                                         auth: tuple[str, str] | None) -> None:
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(auth),
                                 json={"host_name": "web1", "status_code": 0})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert set(await response.json()) == {"error", "full_error"}
    assert reader.read_lines() == []


async def test_unknown_objects_are_refused_before_writing(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=creds(USER), json={
        "host_name": "web1", "service_description": "ftp", "status_code": 0})
    assert response.status == 400
    assert "no service 'ftp' on host 'web1'" in (await response.json())["full_error"]
    assert reader.read_lines() == []


async def test_process_commands_need_a_grant(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/api/command/SHUTDOWN_PROGRAM", headers=creds(USER))
    assert response.status == 401
    assert "SHUTDOWN_PROGRAM" in (await response.json())["full_error"]
    assert reader.read_lines() == []


async def test_too_large_a_body_gets_413_in_op5_form(client: TestClient) -> None:
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", data=b"x" * (5 * 1024 * 1024),
                                 headers={**creds(USER), "Content-Type": "application/json"})
    assert response.status == 413
    assert set(await response.json()) == {"error", "full_error"}


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"42", b"null", b'{"host_name": ["web1"], "status_code": 0}',
                                  b'{"host_name": {"a": 1}, "status_code": {}}', b"\xff\xfe"])
async def test_odd_op5_bodies_get_a_4xx_never_a_500(client: TestClient, body: bytes) -> None:
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", data=body,
                                 headers={**creds(USER), "Content-Type": "application/json"})
    assert 400 <= response.status < 500, await response.text()


@pytest.mark.parametrize(("body", "field", "wrong"), [
    (b'{"host_name": "web1", "status_code": NaN}', "status_code", "whole number"),
    (b'{"host_name": "web1", "status_code": 18446744073709551616}', "status_code", "0 (UP)"),
    (b'{"host_name": "web1", "status_code": 0, "plugin_output": "\\ud800"}', "plugin_output", "lone surrogate"),
])
async def test_json_the_fast_codec_refuses_still_reaches_the_field_checks(client: TestClient, reader: FifoReader,
                                                                         body: bytes, field: str,
                                                                         wrong: str) -> None:
    """NaN, integers beyond 64 bits and lone surrogates are JSON Python reads; the answer names the field."""
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", data=body,
                                 headers={**creds(USER), "Content-Type": "application/json"})
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, f"Invalid parameter '{field}'"), answer
    assert wrong in answer["full_error"]
    assert reader.read_lines() == []


async def test_broken_json_is_named_with_its_line_and_column(client: TestClient) -> None:
    response = await client.patch("/host/web1", data=b'{"livestate": {"state": "up",}}',
                                  headers={**creds(TOKEN), "Content-Type": "application/json"})
    answer = await response.json()
    assert answer["_status"] == "ERR"
    assert "at line 1 column 30" in answer["_issues"][0], answer


@pytest.mark.parametrize("body", [b"[]", b'"x"', b'{"livestate": 5}', b'{"livestate": [1, "x"]}',
                                  b'{"services": 5}', b'{"services": [5]}', b'{"variables": [1]}',
                                  b'{"name": 5}', b'{"livestate": {"state": ["up"]}}',
                                  b'{"livestate": {"state": "up", "output": {"a": 1}}}'])
async def test_odd_alignak_bodies_get_an_answer_never_a_500(client: TestClient, reader: FifoReader,
                                                            body: bytes) -> None:
    response = await client.patch("/host/web1", data=body,
                                  headers={**creds(TOKEN), "Content-Type": "application/json"})
    assert response.status in (200, 400), await response.text()
    assert (await response.json())["_status"] == "ERR"
    assert reader.read_lines() == []


async def test_alignak_empty_document(client: TestClient) -> None:
    response = await client.patch("/host/web1", headers=creds(TOKEN), json={})
    assert await response.json() == {"_status": "ERR", "_error": "You must send parameters on this endpoint."}


async def test_alignak_applies_the_valid_part_and_names_the_rest(client: TestClient, reader: FifoReader) -> None:
    response = await client.patch("/host/web1", headers=creds(TOKEN), json={
        "livestate": {"state": "up", "output": "fine", "timestamp": "soon"},
        "variables": {"owner": "dev", "missing": "x"}, "template": {"_templates": ["generic-host"]},
        "location": "dock"})
    body = await response.json()
    # As Alignak: a time int() refuses is now; fields it does not know are passed over without a word.
    assert body == {"_status": "ERR",
                    "_result": ["web1 is alive :)", f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;fine",
                                "Host 'web1' updated."],
                    "_issues": ["Host 'web1': variable '_MISSING' does not exist and cannot be created: the engine "
                                "only changes custom variables an object already defines."]}
    assert await collect(reader, 2) == [f"[{NOW}] CHANGE_CUSTOM_HOST_VAR;web1;OWNER;dev".encode(),
                                        f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;fine".encode()]


async def test_alignak_feedback_with_every_property(client: TestClient, reader: FifoReader) -> None:
    response = await client.patch("/host/web1", headers=creds(TOKEN), json={
        "livestate": {"state": "up", "output": "fine"}})
    body = await response.json()
    assert body["_result"] == ["web1 is alive :)", f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;fine"]
    assert body["_feedback"] == {"name": "web1", "alias": "Web server", "notes": "", "active_checks_enabled": False,
                                 "passive_checks_enabled": True, "check_freshness": True,
                                 "freshness_threshold": 600, "check_interval": 0.0, "retry_interval": 0.0,
                                 "max_check_attempts": 3, "freshness_state": "d", "stale": False}
    assert len(await collect(reader, 1)) == 1


async def test_alignak_service_errors_and_order(client: TestClient, reader: FifoReader) -> None:
    response = await client.patch("/host", headers=creds(TOKEN), json={
        "name": "web1", "services": [{"livestate": {"state": "ok"}}]})
    assert (await response.json())["_issues"] == ["A service does not have a 'name' property"]
    response = await client.patch("/host/web1", headers=creds(TOKEN), json={"services": {"HTTP check": {
        "name": "http", "passive_checks_enabled": False, "active_checks_enabled": True,
        "livestate": {"state": "UNREACHABLE", "output": "gone"}}}})
    body = await response.json()
    # Without status.dat the engine's configuration is the current value: active checks are off, passive on.
    assert body["_result"][1:] == ["Service web1/http active checks will be enabled.",
                                   f"Sent external command: [{NOW}] ENABLE_SVC_CHECK;web1;http.",
                                   "Service web1/http passive checks will be disabled.",
                                   f"Sent external command: [{NOW}] DISABLE_PASSIVE_SVC_CHECKS;web1;http.",
                                   f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;3;gone",
                                   "Service 'web1/http' updated"]
    services = body["_feedback"]["services"]
    assert [s["name"] for s in services] == ["http"]
    assert services[0]["alias"] == "HTTP" and services[0]["passive_checks_enabled"] is False
    # Sent in the order the engine needs: checks enabled, the result, then checks disabled.
    assert await collect(reader, 3) == [f"[{NOW}] ENABLE_SVC_CHECK;web1;http".encode(),
                                        f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;3;gone".encode(),
                                        f"[{NOW}] DISABLE_PASSIVE_SVC_CHECKS;web1;http".encode()]


async def test_unknown_path_is_404_in_the_callers_dialect(client: TestClient) -> None:
    response = await client.post("/api/commands/X", headers=creds(USER))
    assert response.status == 404
    assert set(await response.json()) == {"error", "full_error"}
    response = await client.delete("/host/web1", headers=creds(TOKEN))
    assert (response.status, await response.json()) == (
        200, {"_status": "ERR", "_error": "You must only GET, PATCH or POST on this endpoint."})  # Alignak's
    response = await client.put("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(USER))
    assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD, POST")
    assert "no PUT /api/command/PROCESS_HOST_CHECK_RESULT here" in (await response.json())["full_error"]
    response = await client.get("/ws/nothing", headers=creds(TOKEN))
    assert response.status == 404
    assert (await response.json())["_status"] == "ERR"


@pytest.fixture
async def tiny_spool_client(aiohttp_client, tmp_path: Path) -> TestClient:
    """No engine reads the pipe and the spool holds 64 KiB."""
    fifo = tmp_path / "nobody.cmd"
    os.mkfifo(fifo, 0o660)
    config = Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo),
                    spool=SpoolConfig(directory=tmp_path / "spool", max_bytes=64 * 1024),
                    users=(User("alice", password="secret"), User("readers", token="tok-123")))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def test_health_needs_no_auth_and_says_degraded_while_the_engine_is_away(
        tiny_spool_client: TestClient) -> None:
    response = await tiny_spool_client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded" and body["engine"] == {"reachable": False, "stalled_s": None}
    assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("the engine does not take commands: ")
    assert body["spool"]["results"] == 0 and body["spool"]["oldest_age_s"] is None


async def test_health_is_ok_when_the_engine_reads(client: TestClient) -> None:
    response = await client.get("/health")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_a_full_spool_answers_503_in_each_dialect_and_writes_nothing_partial(
        tiny_spool_client: TestClient) -> None:
    output = "x" * 1000
    for _ in range(200):
        response = await tiny_spool_client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(USER),
                                                json={"host_name": "web1", "status_code": 0,
                                                      "plugin_output": output})
        if response.status != 200:
            break
    assert response.status == 503
    assert response.headers["Retry-After"]
    body = await response.json()
    assert set(body) == {"error", "full_error"} and "spool is full" in body["full_error"]
    before = (await (await tiny_spool_client.get("/health")).json())["spool"]
    response = await tiny_spool_client.patch("/host/web1", headers=creds(TOKEN), json={
        "livestate": {"state": "up", "output": output},
        "services": {str(i): {"name": f"s{i}", "livestate": {"state": "ok", "output": output}} for i in range(20)}})
    assert response.status == 503
    body = await response.json()
    assert body["_status"] == "ERR" and "spool is full" in body["_issues"][0]
    after = (await (await tiny_spool_client.get("/health")).json())["spool"]
    assert after["results"] == before["results"] and after["bytes"] == before["bytes"]


async def test_metrics_count_what_was_sent(client: TestClient, reader: FifoReader) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    assert (await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(USER),
                              json={"host_name": "web1", "status_code": 0})).status == 200
    response = await client.patch("/host/web1", headers=creds(TOKEN), json={
        "livestate": {"state": "up"}, "services": {"a": {"name": "http", "livestate": [{"state": "ok"},
                                                                                     {"state": "warning"}]}}})
    assert (await response.json())["_status"] == "OK"
    response = await client.post("/nrdp/", data={"token": "tok-123", "cmd": "submitcheck", "JSONDATA": json.dumps(
        {"checkresults": [{"checkresult": {"type": "service"}, "hostname": "web1", "servicename": "http",
                           "state": "0", "output": "fine"}]})})
    assert (await response.json())["result"]["status"] == 0
    assert (await client.post("/v1/actions/process-check-result?host=web1", headers=creds(USER) | {
        "Accept": "application/json"}, json={"exit_status": 0, "plugin_output": "up"})).status == 200
    assert (await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(USER),
                              json={"host_name": "web1", "status_code": 9})).status == 400
    assert (await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=creds(("alice", "nope")),
                              json={"host_name": "web1", "status_code": 0})).status == 401
    await collect(reader, 6)
    response = await client.get("/metrics")  # no auth
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(await response.text()) for s in family.samples}
    assert samples[("naemon_bridge_results_accepted_total", ())] == 6  # results, not requests
    assert samples[("naemon_bridge_results_delivered_total", ())] == 6
    assert {dict(labels)["dialect"]: value for (name, labels), value in samples.items()
            if name == "naemon_bridge_results_by_dialect_total"} == {"op5": 1, "alignak": 3, "nrdp": 1, "icinga": 1}
    assert samples[("naemon_bridge_results_refused_total", (("reason", "invalid"),))] == 1
    assert samples[("naemon_bridge_results_refused_total", (("reason", "unauthenticated"),))] == 1
    assert samples[("naemon_bridge_engine_up", ())] == 1
    assert samples[("naemon_bridge_spool_results", ())] == 0 and samples[("naemon_bridge_spool_bytes", ())] == 0
    assert samples[("naemon_bridge_stale_objects", ())] == 0
    assert samples[("naemon_bridge_request_duration_seconds_count", (("api", "op5"),))] == 3
    assert samples[("naemon_bridge_request_duration_seconds_count", (("api", "alignak"),))] == 1


async def test_a_reload_applies_the_spool_limits_and_the_busy_wait(client: TestClient, tmp_path: Path) -> None:
    from dataclasses import replace

    from bridge.daemon.reload import apply_config
    from bridge.http.keys import CONFIG, DELIVERY

    app = client.server.app
    old = app[CONFIG].current
    new = replace(old, engine=replace(old.engine, busy_wait=0.0), spool=replace(old.spool, max_bytes=1 << 20))
    assert apply_config(app, new) == []  # neither needs a restart
    assert (app[DELIVERY].busy_wait, app[DELIVERY].max_spool_bytes) == (0.0, 1 << 20)

