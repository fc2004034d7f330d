"""Icinga 2's process-check-result through the real app in front of a real FIFO: targets and filters, the lines
written, ttl in the freshness table, and bad input refused in Icinga 2's shapes with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from bridge.config.model import User
from bridge.core.permissions import Grants, NamePattern
from bridge.http.app import make_app
from bridge.intake import DIALECTS
from tests.conftest import FifoReader, collect, fifo_config

NOW = 1_700_000_000
OBJECTS = "".join(f"define host {{\n\thost_name\t{h}\n\t}}\n" for h in ("web1", "db1")) + "".join(
    f"define service {{\n\thost_name\tweb1\n\tservice_description\t{s}\n\t}}\n" for s in ("http", "disk"))
PATH = "/v1/actions/process-check-result"
HEADERS = {"Accept": "application/json", "Authorization": encode_basic_auth("alice", "secret")}


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    config = fifo_config(fifo, tmp_path, OBJECTS, (User("alice", password="secret"),
                         User("db-only", password="pw", grants=Grants(commands=("PROCESS_*",),
                                                                      hosts=(NamePattern.parse("db*"),)))))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def post(client: TestClient, query: str, body: object, headers: dict[str, str] = HEADERS) -> tuple[int, dict]:
    response = await client.post(PATH + query, data=json.dumps(body), headers=headers)
    return response.status, await response.json()


async def test_a_service_filter_on_the_host_alone_reaches_each_of_its_services(client: TestClient,
                                                                               reader: FifoReader) -> None:
    status, body = await post(client, "", {"type": "Service", "filter": "host.name==h", "filter_vars": {"h": "web1"},
                                           "exit_status": 5, "plugin_output": "gone", "performance_data": "a=1  b=2"})
    assert status == 200 and [r["status"] for r in body["results"]] == [
        "Successfully processed check result for object 'web1!disk'.",
        "Successfully processed check result for object 'web1!http'."]
    assert await collect(reader, 2) == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;{s};3;gone|a=1 b=2".encode()
                                        for s in ("disk", "http")]


async def test_a_ttl_becomes_the_objects_threshold(client: TestClient, reader: FifoReader) -> None:
    status, _ = await post(client, "?host=db1", {"exit_status": 0, "plugin_output": "up", "ttl": 300})
    assert status == 200
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;db1;0;up".encode()]
    response = await client.get("/api/freshness?host=db1", headers=HEADERS)
    rows = (await response.json())["objects"]
    assert [(r["service_description"], r["threshold_s"]) for r in rows] == [(None, 300)]
    status, _ = await post(client, "?host=db1", {"exit_status": 0, "plugin_output": "still up"})  # no ttl
    assert status == 200
    await collect(reader, 1)
    response = await client.get("/api/freshness?host=db1", headers=HEADERS)
    assert [r["threshold_s"] for r in (await response.json())["objects"]] == [None]  # back to the usual rules


@pytest.mark.parametrize(("query", "body", "auth", "expected"), [
    ("?service=web1!http", {"exit_status": [1], "plugin_output": "x"}, None,
     (400, {"results": [{"code": 400, "status": "Parameter 'exit_status' must be a number, not [1]."}]})),
    ("?service=web1!http", {"exit_status": 1, "plugin_output": "x", "ttl": -5}, None,
     (400, {"results": [{"code": 400, "status": "Parameter 'ttl' must be a number of seconds, not -5."}]})),
    ("?service=web1!http", {"exit_status": 1, "plugin_output": "x", "performance_data": 5}, None,
     (400, {"results": [{"code": 400, "status": "Parameter 'performance_data' must be a string or a list of "
                                                 "strings."}]})),
    ("?service=web1!http", {"exit_status": 1, "plugin_output": "a\x00b"}, None,
     (400, {"results": [{"code": 400, "status": "plugin_output: must not contain a NUL byte"}]})),
    ("", {"type": "Service", "filter": 'host.name=="web1" || true', "exit_status": 1, "plugin_output": "x"}, None,
     (400, None)),
    ("?host=web1", {"exit_status": 1, "plugin_output": "x"}, ("db-only", "pw"), (403, None)),
    ("?host=web1", {"exit_status": 1, "plugin_output": "x"}, ("alice", "wrong"),
     (401, {"error": 401, "status": "Unauthorized. Please check your user credentials."})),
])
async def test_bad_input_is_refused_in_icinga2s_shape_and_nothing_is_written(
        client: TestClient, reader: FifoReader, query: str, body: dict, auth: tuple[str, str] | None,
        expected: tuple[int, dict | None]) -> None:
    headers = HEADERS if auth is None else {**HEADERS, "Authorization": encode_basic_auth(*auth)}
    status, answer = await post(client, query, body, headers)
    assert status == expected[0], answer
    if expected[1] is not None:
        assert answer == expected[1]
    else:
        assert set(answer) == {"error", "status"} and answer["error"] == status
    assert reader.read_lines() == []
