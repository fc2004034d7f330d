"""op5's endpoint reads parameters as op5's own command layer does (docs/research/op5-command-layer.md): through
aiohttp's test client with a real FIFO, the lines the engine would read. The other dialects keep the engine's
meaning, checked beside each rule."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate

from bridge.config.model import Config, EngineConfig, SpoolConfig, User
from bridge.core.errors import InvalidInput
from bridge.core.permissions import Grants
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.http.xmlio import xml_document
from bridge.intake import DIALECTS
from bridge.intake.op5 import hours_to_seconds
from tests.conftest import FifoReader, collect

NOW = 1_700_000_000
OBJECTS = "define host {\n\thost_name\tweb1\n\t}\n" \
          "define service {\n\thost_name\tweb1\n\tservice_description\thttp\n\t}\n"
OPS = {"Authorization": encode_basic_auth("ops", "x")}
DOWNTIME = {"host_name": "web1", "service_description": "http", "start_time": NOW, "end_time": NOW + 86400,
            "fixed": 0, "comment": "c"}


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    (tmp_path / "objects.cache").write_text(OBJECTS)
    config = Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo,
                                        objects_cache=tmp_path / "objects.cache"),
                    spool=SpoolConfig(directory=tmp_path / "spool"),
                    users=(User("ops", password="x"),
                           User("checks", password="x", grants=Grants(commands=("PROCESS_*_CHECK_RESULT",)))))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


async def op5(client: TestClient, command: str, params: dict, query: str = "") -> tuple[int, dict]:
    response = await client.post(f"/api/command/{command}{query}", headers=OPS, json=params)
    return response.status, await response.json()


async def line(client: TestClient, reader: FifoReader, command: str, params: dict) -> str:
    status, body = await op5(client, command, params)
    assert status == 200, body
    return (await collect(reader, 1))[0].decode()


async def alignak_command(client: TestClient, reader: FifoReader, command: str, parameters: str) -> str:
    response = await client.post("/command", headers=OPS, json={"command": command, "element": "web1/http",
                                                                 "parameters": parameters})
    assert (await response.json())["_status"] == "OK"
    return (await collect(reader, 1))[0].decode()


# --- 1. duration is in hours on op5's endpoint ----------------------------------------------------------------------

@pytest.mark.parametrize("duration,seconds", [(2, 7200), ("2", 7200), ("1.5", 5400), (1.5, 5400), (0.25, 900),
                                              (" .5 ", 1800), ("1.1", 3960)])
async def test_duration_is_hours_as_op5_reads_it(client: TestClient, reader: FifoReader, duration: object,
                                                 seconds: int) -> None:
    got = await line(client, reader, "SCHEDULE_SVC_DOWNTIME", {**DOWNTIME, "duration": duration})
    assert got == f"[{NOW}] SCHEDULE_SVC_DOWNTIME;web1;http;{NOW};{NOW + 86400};0;0;{seconds};ops;c"


@pytest.mark.parametrize("duration", ["2h", "-1", -1, True, "abc", "1e3", [2], float("inf")])
async def test_a_duration_that_is_no_number_of_hours_is_refused(client: TestClient, reader: FifoReader,
                                                                duration: object) -> None:
    if duration == float("inf"):
        response = await client.post("/api/command/SCHEDULE_SVC_DOWNTIME", headers=OPS,
                                     data=b'{"host_name": "web1", "service_description": "http", "end_time": "+1h",'
                                          b' "fixed": 0, "comment": "c", "duration": Infinity}',
                                     )
        status, body = response.status, await response.json()
    else:
        status, body = await op5(client, "SCHEDULE_SVC_DOWNTIME", {**DOWNTIME, "duration": duration})
    assert status == 400 and body["error"] == "Invalid parameter 'duration'" and "hours" in body["full_error"]
    assert reader.read_lines() == []


async def test_without_a_duration_a_downtime_lasts_from_start_to_end(client: TestClient, reader: FifoReader) -> None:
    got = await line(client, reader, "SCHEDULE_HOST_DOWNTIME", {"host_name": "web1", "end_time": "+2h"})
    assert got == f"[{NOW}] SCHEDULE_HOST_DOWNTIME;web1;{NOW};{NOW + 7200};1;0;7200;ops;Scheduled by ops"


async def test_alignak_keeps_seconds(client: TestClient, reader: FifoReader) -> None:
    got = await alignak_command(client, reader, "SCHEDULE_SVC_DOWNTIME", f"{NOW};{NOW + 60};0;0;2;ops;c")
    assert got.endswith(f";{NOW};{NOW + 60};0;0;2;ops;c")  # 2 seconds, as Alignak and the engine mean it


@given(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False))
def test_hours_in_any_decimal_form_become_whole_seconds_cut_as_op5_cuts_them(hours: Decimal) -> None:
    assert hours_to_seconds(str(hours)) == int(hours * 3600)
    assert hours_to_seconds(f" {hours} ") == int(hours * 3600)


@given(st.integers(min_value=0, max_value=10**9))
def test_whole_hours_as_numbers_or_text(hours: int) -> None:
    assert hours_to_seconds(hours) == hours_to_seconds(str(hours)) == hours * 3600


@given(st.text().filter(lambda t: not t.strip().replace(".", "", 1).isdecimal()))
def test_text_that_is_no_number_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        hours_to_seconds(text.lstrip("+"))
    assert caught.value.field == "duration"


async def test_the_template_and_openapi_say_hours(client: TestClient) -> None:
    body = await (await client.get("/api/command/SCHEDULE_SVC_DOWNTIME", headers=OPS)).json()
    duration = next(p for p in body["parameters"] if p["name"] == "duration")
    assert duration["type"] == "hours" and "hours" in duration["description"]
    document = await (await client.get("/api/openapi.json")).json()
    validate(document)
    schema = document["paths"]["/api/command/SCHEDULE_SVC_DOWNTIME"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert "hours" in schema["properties"]["duration"]["description"]
    hours = schema["properties"]["duration"]["anyOf"][0]  # not required: or null, or ""
    assert hours["type"] == ["number", "string"] and hours["minimum"] == 0 and "pattern" in hours


# --- 2. booleans left out are filled as op5's ORM fills them ---------------------------------------------------------

async def test_an_acknowledgement_without_flags_is_plain_as_op5_writes_it(client: TestClient,
                                                                         reader: FifoReader) -> None:
    got = await line(client, reader, "ACKNOWLEDGE_SVC_PROBLEM", {"host_name": "web1", "service_description": "http",
                                                                 "comment": "on it"})
    assert got == f"[{NOW}] ACKNOWLEDGE_SVC_PROBLEM;web1;http;0;0;0;ops;on it"
    got = await line(client, reader, "ACKNOWLEDGE_HOST_PROBLEM", {"host_name": "web1", "notify": "", "comment": " "})
    assert got == f"[{NOW}] ACKNOWLEDGE_HOST_PROBLEM;web1;0;0;0;ops;Acknowledged by ops"


async def test_a_comment_without_persistent_is_persistent(client: TestClient, reader: FifoReader) -> None:
    got = await line(client, reader, "ADD_SVC_COMMENT", {"host_name": "web1", "service_description": "http",
                                                         "comment": "noted; really"})
    assert got == f"[{NOW}] ADD_SVC_COMMENT;web1;http;1;ops;noted; really"
    got = await line(client, reader, "ADD_HOST_COMMENT", {"host_name": "web1", "persistent": False, "comment": "x"})
    assert got == f"[{NOW}] ADD_HOST_COMMENT;web1;0;ops;x"


async def test_a_check_without_a_time_is_now(client: TestClient, reader: FifoReader) -> None:
    got = await line(client, reader, "SCHEDULE_SVC_CHECK", {"host_name": "web1", "service_description": "http"})
    assert got == f"[{NOW}] SCHEDULE_SVC_CHECK;web1;http;{NOW}"


async def test_the_template_shows_op5s_defaults(client: TestClient) -> None:
    async def template(command: str) -> dict[str, dict]:
        body = await (await client.get(f"/api/command/{command}", headers=OPS)).json()
        return {p["name"]: p for p in body["parameters"]}

    ack = await template("ACKNOWLEDGE_SVC_PROBLEM")
    for name in ("sticky", "notify", "persistent"):
        assert (ack[name]["default"], ack[name]["required"]) == ("0", False)
    assert ack["comment"]["default"] == "Acknowledged by <author>"
    assert "op5 reads 1 as sticky" in ack["sticky"]["description"]
    assert (await template("ADD_HOST_COMMENT"))["persistent"]["default"] == "1"
    downtime = await template("SCHEDULE_HOST_DOWNTIME")
    assert downtime["fixed"]["default"] == "1" and downtime["comment"]["default"] == "Scheduled by <author>"
    assert (await template("SCHEDULE_HOST_CHECK"))["check_time"]["default"] == "now"


@pytest.mark.parametrize("value", ["maybe", 5, "", None])
async def test_booleans_stay_strict(client: TestClient, reader: FifoReader, value: object) -> None:
    """PHP would take "maybe" and 5 as true; the bridge refuses what is not a boolean ("" and null are left out)."""
    params = {"host_name": "web1", "service_description": "http", "comment": "c", "notify": value}
    status, body = await op5(client, "ACKNOWLEDGE_SVC_PROBLEM", params)
    if value in ("", None):
        assert status == 200 and (await collect(reader, 1))[0].endswith(b";0;0;0;ops;c")
    else:
        assert status == 400 and body["error"] == "Invalid parameter 'notify'"
        assert reader.read_lines() == []


async def test_alignak_event_and_command_keep_their_own_flags(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/command", headers=OPS, json={"command": "ACKNOWLEDGE_SVC_PROBLEM",
                                                                "element": "web1/http", "parameters": ""})
    assert (await response.json())["_status"] == "ERR"  # positional, nothing filled
    assert reader.read_lines() == []


# --- 3. sticky: any true value is sticky (2), as op5's ORM writes it ------------------------------------------------

@pytest.mark.parametrize("sticky,written", [(1, 2), ("1", 2), (2, 2), ("2", 2), (True, 2), ("true", 2),
                                            ("yes", 2), (0, 0), ("0", 0), (False, 0), ("false", 0)])
async def test_sticky_as_op5_reads_it(client: TestClient, reader: FifoReader, sticky: object, written: int) -> None:
    got = await line(client, reader, "ACKNOWLEDGE_SVC_PROBLEM", {"host_name": "web1", "service_description": "http",
                                                                 "sticky": sticky, "comment": "c"})
    assert got == f"[{NOW}] ACKNOWLEDGE_SVC_PROBLEM;web1;http;{written};0;0;ops;c"


@pytest.mark.parametrize("sticky", [3, "sticky", -1])
async def test_sticky_that_is_no_boolean_is_refused(client: TestClient, reader: FifoReader, sticky: object) -> None:
    status, body = await op5(client, "ACKNOWLEDGE_SVC_PROBLEM", {"host_name": "web1", "service_description": "http",
                                                                 "sticky": sticky, "comment": "c"})
    assert status == 400 and body["error"] == "Invalid parameter 'sticky'"
    assert reader.read_lines() == []


async def test_alignak_sticky_1_stays_the_engines_1(client: TestClient, reader: FifoReader) -> None:
    got = await alignak_command(client, reader, "ACKNOWLEDGE_SVC_PROBLEM", "1;1;0;ops;c")
    assert got.endswith("ACKNOWLEDGE_SVC_PROBLEM;web1;http;1;1;0;ops;c")


# --- 4. parameters a command does not take: ignored and named ------------------------------------------------------

async def test_extra_parameters_are_ignored_and_named(client: TestClient, reader: FifoReader,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="naemon_bridge.op5")
    status, body = await op5(client, "PROCESS_HOST_CHECK_RESULT", {
        "host_name": "web1", "status_code": 1, "plugin_ouput": "typo", "check_source": "cron"})
    assert (status, body) == (200, {"result": "Successfully submitted PROCESS_HOST_CHECK_RESULT", "warnings": [
        "ignored parameter 'plugin_ouput': PROCESS_HOST_CHECK_RESULT takes no such parameter",
        "ignored parameter 'check_source': PROCESS_HOST_CHECK_RESULT takes no such parameter"]})
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;1;(No output returned from plugin)"
                                        .encode()]
    assert "PROCESS_HOST_CHECK_RESULT from ops: ignored parameters 'plugin_ouput', 'check_source'" in caplog.text
    many = {"host_name": "web1", "status_code": 0, **{f"x{n}": n for n in range(25)}}
    status, body = await op5(client, "PROCESS_HOST_CHECK_RESULT", many)
    assert status == 200 and len(body["warnings"]) == 21 and body["warnings"][-1] == "and 5 more ignored parameters"
    assert len(await collect(reader, 1)) == 1


@pytest.mark.parametrize("value", [["a"], {"k": 1}])
async def test_an_extra_parameter_holding_a_list_or_an_object_is_refused(client: TestClient, reader: FifoReader,
                                                                         value: object) -> None:
    status, body = await op5(client, "PROCESS_HOST_CHECK_RESULT", {"host_name": "web1", "status_code": 0,
                                                                   "tags": value})
    assert status == 400 and body["error"] == "Invalid parameter 'tags'"
    assert "no op5 parameter takes a" in body["full_error"]
    status, _ = await op5(client, "PROCESS_HOST_CHECK_RESULT", {"host_name": "web1", "status_code": 0})
    assert status == 200
    assert await collect(reader, 1) == [f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;(No output returned from plugin)"
                                        .encode()]  # the refused one wrote nothing


async def test_without_extras_the_answer_is_the_same_bytes(client: TestClient, reader: FifoReader) -> None:
    for query in ("", "?format=json", "?format=JSON"):
        response = await client.post(f"/api/command/PROCESS_HOST_CHECK_RESULT{query}", headers=OPS,
                                     json={"host_name": "web1", "status_code": 0})
        assert await response.read() == b'{"result":"Successfully submitted PROCESS_HOST_CHECK_RESULT"}'
        assert response.headers["Content-Type"] == "application/json"
    assert len(await collect(reader, 3)) == 3


async def test_a_misspelt_required_parameter_names_the_missing_and_the_closest(client: TestClient,
                                                                              reader: FifoReader) -> None:
    status, body = await op5(client, "PROCESS_SERVICE_CHECK_RESULT", {
        "host_name": "web1", "service_description": "http", "status": 2, "plugin_output": "x", "extra": 1})
    assert (status, body) == (400, {"error": "Invalid parameter 'status_code'", "full_error":
                                    "status_code: is required by PROCESS_SERVICE_CHECK_RESULT; did you mean 'status'?"})
    status, body = await op5(client, "PROCESS_HOST_CHECK_RESULT", {"host_name": "web1", "zzz": 2})
    assert status == 400 and body["full_error"].endswith("is required by PROCESS_HOST_CHECK_RESULT (ignored: 'zzz')")
    assert reader.read_lines() == []


async def test_perf_data_is_appended_to_the_output_as_op5_does(client: TestClient, reader: FifoReader) -> None:
    got = await line(client, reader, "PROCESS_SERVICE_CHECK_RESULT", {
        "host_name": "web1", "service_description": "http", "status_code": 0, "plugin_output": "OK",
        "perf_data": "time=0.1s"})
    assert got == f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;0;OK|time=0.1s"
    got = await line(client, reader, "PROCESS_HOST_CHECK_RESULT", {"host_name": "web1", "status_code": 0,
                                                                   "perf_data": "rtt=5ms"})
    assert got == f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;0;|rtt=5ms"
    body = await (await client.get("/api/command/PROCESS_HOST_CHECK_RESULT", headers=OPS)).json()
    assert [p["name"] for p in body["parameters"]] == ["host_name", "status_code", "plugin_output", "perf_data"]


async def test_the_batch_endpoint_keeps_its_checks(client: TestClient, reader: FifoReader) -> None:
    for extra in ({"perf_data": "a=1"}, {"duration": 2}):
        response = await client.post("/api/results", headers=OPS, json=[{"host_name": "web1", "status_code": 0,
                                                                          **extra}])
        assert response.status == 400 and "is not a parameter" in (await response.json())["full_error"]
    assert reader.read_lines() == []


# --- 5. ?format=xml --------------------------------------------------------------------------------------------------

async def test_xml_when_asked_for_answers_and_errors(client: TestClient, reader: FifoReader) -> None:
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT?format=xml", headers=OPS,
                                 json={"host_name": "web1", "status_code": 0, "x": 1})
    assert response.status == 200 and response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert await response.text() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<response><result>Successfully submitted PROCESS_HOST_CHECK_RESULT'
        "</result><warnings><item>ignored parameter 'x': PROCESS_HOST_CHECK_RESULT takes no such parameter</item>"
        "</warnings></response>")
    assert len(await collect(reader, 1)) == 1
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT?format=xml", headers=OPS,
                                 json={"host_name": "web1", "status_code": 7})
    root = ET.fromstring(await response.read())
    assert response.status == 400 and root.tag == "response"
    assert root.findtext("error") == "Invalid parameter 'status_code'" and "7" in root.findtext("full_error", "")
    for method, path, status in (("POST", "/api/command/NOPE", 404), ("GET", "/api/nothing/here", 404),
                                 ("PUT", "/api/command/PROCESS_HOST_CHECK_RESULT", 405)):
        response = await client.request(method, f"{path}?format=xml", headers=OPS)
        assert response.status == status
        assert (await response.text()).startswith('<?xml version="1.0" encoding="UTF-8"?>\n<response><error>')
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT?format=xml", json={})
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    assert await response.text() == ('<?xml version="1.0" encoding="UTF-8"?>\n<response><error>Unauthorized</error>'
                                     "<full_error>You need to login to access this page</full_error></response>")
    listing = ET.fromstring(await (await client.get("/api/command?format=xml", headers=OPS)).read())
    assert "PROCESS_HOST_CHECK_RESULT" in [item.findtext("name") for item in listing.iter("item")]
    response = await client.post("/api/results?format=xml", headers=OPS, json=[{"host_name": "web1",
                                                                                "status_code": 0}])
    assert ET.fromstring(await response.read()).findtext("accepted") == "1"
    assert len(await collect(reader, 1)) == 1


def test_any_answer_makes_well_formed_xml() -> None:
    document = xml_document({"error": "x", "full_error": "bad \x01 value \ud800 <&>", "list": [1, None, True],
                             "1 not a name": {"xmlish": "y"}})
    root = ET.fromstring(document)
    assert root.findtext("full_error") == "bad \\x01 value \\xd800 <&>"
    assert [item.text for item in root.find("list") or []] == ["1", None, "true"]
    odd = root.find("item")
    assert odd is not None and odd.get("name") == "1 not a name" and odd[0].get("name") == "xmlish"


# --- 6. op5's 401 ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": encode_basic_auth("ops", "wrong")},
                                     {"Authorization": "Basic !!!"}])
async def test_the_401_is_op5s(client: TestClient, reader: FifoReader, headers: dict) -> None:
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=headers,
                                 json={"host_name": "web1", "status_code": 0})
    assert response.status == 401 and response.headers["WWW-Authenticate"] == 'Basic realm="naemon-bridge"'
    assert await response.read() == b'{"error":"Unauthorized","full_error":"You need to login to access this page"}'
    response = await client.patch("/host/web1", headers=headers, json={"livestate": {"state": "up"}})
    assert response.status == 401 and (await response.json())["_status"] == "ERR"  # Alignak's shape, unchanged
    assert reader.read_lines() == []


# --- 7. help pages ------------------------------------------------------------------------------------------------

async def test_a_commands_help_page(client: TestClient) -> None:
    response = await client.get("/api/help/command/process_service_check_result", headers=OPS)
    assert response.status == 200 and response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = await response.text()
    assert "<title>PROCESS_SERVICE_CHECK_RESULT - naemon-bridge</title>" in page
    assert "<th>Property (required)</th><th>Type</th>" in page
    assert "<tr><td>host_name (required)</td><td>host</td>" in page
    assert "<tr><td>plugin_output</td><td>output</td><td>(No output returned from plugin)</td>" in page
    assert ("<pre>curl -u '<your username>:<your password>' -H 'content-type: application/json' -d "
            '\'{"host_name": "example_host_1", "service_description": "Example service", "status_code": 2, '
            '"plugin_output": "Example issue has occurred"}\' '
            "'http://<bridge host>:8888/api/command/PROCESS_SERVICE_CHECK_RESULT'</pre>") in html.unescape(page)
    body = await (await client.get("/api/help/command/SCHEDULE_SVC_DOWNTIME?format=json", headers=OPS)).json()
    assert body["command"] == "SCHEDULE_SVC_DOWNTIME" and body["permitted"] is True
    assert body["example"]["body"] == {"host_name": "example_host_1", "service_description": "Example service",
                                       "end_time": "+2h"}
    assert {p["name"]: p["type"] for p in body["parameters"]}["duration"] == "hours"


async def test_the_help_index_lists_what_the_user_may_run(client: TestClient) -> None:
    checks = {"Authorization": encode_basic_auth("checks", "x")}
    page = await (await client.get("/api/help/command", headers=checks)).text()
    assert '<a href="/api/help/command/PROCESS_HOST_CHECK_RESULT">PROCESS_HOST_CHECK_RESULT</a>' in page
    assert "ACKNOWLEDGE_SVC_PROBLEM" not in page
    body = await (await client.get("/api/help/command?format=json", headers=checks)).json()
    assert [c["name"] for c in body["commands"]] == ["PROCESS_SERVICE_CHECK_RESULT", "PROCESS_HOST_CHECK_RESULT"]
    assert body["commands"][0]["help"] == "/api/help/command/PROCESS_SERVICE_CHECK_RESULT"


async def test_help_needs_a_login_and_a_known_command(client: TestClient) -> None:
    response = await client.get("/api/help/command")
    assert response.status == 401 and (await response.json())["error"] == "Unauthorized"
    response = await client.get("/api/help/command/NO_SUCH_THING", headers=OPS)
    assert response.status == 404 and (await response.json())["error"] == "Unknown command"
