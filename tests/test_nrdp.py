"""NRDP through the real app in front of a real FIFO: answers in NRDP's shapes (HTTP 200, status and message as
send_nrdp.sh reads them), raw commands through the command table, safe XML, and the pure parsers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from bridge.config.model import User
from bridge.core.command_table import COMMANDS
from bridge.core.commands import command_from_params, command_from_text, command_line
from bridge.core.errors import InvalidInput
from bridge.core.permissions import Grants
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.intake import DIALECTS
from tests.conftest import FifoReader, collect, fifo_config

NOW = 1_700_000_000
OBJECTS = "define host {\n\thost_name\tweb1\n\t}\n\ndefine service {\n\thost_name\tweb1\n" \
          "\tservice_description\thttp\n\t}\n"
TOKEN = "nrdp-secret"


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    config = fifo_config(fifo, tmp_path, OBJECTS, (User("agents", token=TOKEN),
                         User("results-only", token="limited", grants=Grants(commands=("PROCESS_*",)))))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


def xml_of(*results: str) -> str:
    return "<?xml version='1.0'?>\n<checkresults>\n" + "".join(results) + "\n</checkresults>"


SERVICE = ("<checkresult type='service' checktype='1'><hostname>web1</hostname><servicename>http</servicename>"
           "<state>2</state><output><![CDATA[down & out|t=1]]></output></checkresult>")
HOST = "<checkresult type='host'><hostname>web1</hostname><state>1</state><output>unreachable</output></checkresult>"


def parsed(text: str) -> dict[str, str]:
    if text.startswith("{"):  # a JSON request is answered in JSON
        return {key: str(value) for key, value in json.loads(text)["result"].items() if key != "information"}
    root = ET.fromstring(text)
    return {child.tag: (child.text or "") for child in root.iter() if len(child) == 0}


async def nrdp(client: TestClient, path: str = "/nrdp/", **fields: str) -> tuple[int, str, str]:
    response = await client.post(path, data=fields)
    return response.status, response.content_type, await response.text()


async def test_submitcheck_xml_writes_each_result_and_answers_as_nrdp(client: TestClient,
                                                                      reader: FifoReader) -> None:
    status, kind, text = await nrdp(client, "/nrdp//", token=TOKEN, cmd="submitcheck", xml=xml_of(SERVICE, HOST))
    assert (status, kind) == (200, "text/xml")
    assert text == ('<?xml version="1.0" encoding="utf-8"?>\n<result>\n    <status>0</status>\n'
                    "    <message>OK</message>\n    <meta>\n        <output>2 checks processed</output>\n"
                    "    </meta>\n</result>\n")
    assert await collect(reader, 2) == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;http;2;down & out|t=1".encode(),
                                        f"[{NOW}] PROCESS_HOST_CHECK_RESULT;web1;1;unreachable".encode()]


async def test_submitcheck_json_by_get_with_a_time_answers_json(client: TestClient, reader: FifoReader) -> None:
    data = {"checkresults": [{"checkresult": {"type": "service"}, "hostname": "web1", "servicename": "http",
                              "state": "1", "output": "slow", "time": NOW - 60}]}
    response = await client.get("/nrdp", params={"token": TOKEN, "cmd": "submitcheck", "JSONDATA": json.dumps(data)})
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == {"result": {"status": 0, "message": "OK",
                                                "meta": {"output": "1 checks processed"}}}
    assert await collect(reader, 1) == [f"[{NOW - 60}] PROCESS_SERVICE_CHECK_RESULT;web1;http;1;slow".encode()]


async def test_hello_needs_no_token(client: TestClient) -> None:
    status, _, text = await nrdp(client, cmd="hello")
    assert status == 200 and ET.fromstring(text).tag == "response"
    assert parsed(text) == {"status": "0", "message": "OK", "product": "nrdp", "version": "2.0.5"}


BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        ']><checkresults><checkresult type="host"><hostname>web1</hostname><state>0</state>'
        "<output>&lol2;</output></checkresult></checkresults>")
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><checkresults>'
            '<checkresult type="host"><hostname>web1</hostname><state>0</state><output>&e;</output></checkresult>'
            "</checkresults>")


@pytest.mark.parametrize(("fields", "message"), [
    ({"cmd": "submitcheck", "xml": xml_of(HOST)}, "NO TOKEN"),
    ({"token": "wrong", "cmd": "submitcheck", "xml": xml_of(HOST)}, "BAD TOKEN"),
    ({"token": TOKEN, "cmd": "submitcheck"}, "BAD XML"),
    ({"token": TOKEN, "cmd": "submitcheck", "xml": "<checkresults><checkresult>"}, "BAD XML"),
    ({"token": TOKEN, "cmd": "submitcheck", "xml": BOMB}, "BAD XML"),
    ({"token": TOKEN, "cmd": "submitcheck", "xml": EXTERNAL}, "BAD XML"),
    ({"token": TOKEN, "cmd": "submitcheck", "json": "{not json"}, "BAD JSON"),
    ({"token": TOKEN, "cmd": "submitcheck", "xml": xml_of(HOST.replace("web1", "nosuch"))}, "UNKNOWN OBJECT"),
    ({"token": TOKEN, "cmd": "submitcheck", "xml": xml_of(HOST, HOST.replace(">1<", ">7<"))}, "BAD DATA"),
    ({"token": TOKEN, "cmd": "submitcmd"}, "NO COMMAND"),
    ({"token": TOKEN, "cmd": "submitcmd", "command": "SHUTDOWN_PROGRAMME"}, "BAD COMMAND"),
    ({"token": TOKEN, "cmd": "submitcmd", "command": "DISABLE_HOST_CHECK;web1\n[1] SHUTDOWN_PROGRAM"}, "BAD DATA"),
    ({"token": "limited", "cmd": "submitcmd", "command": "DISABLE_HOST_CHECK;web1"}, "DENIED TOKEN"),
    ({"token": TOKEN, "cmd": "nosuch"}, "No command specified or request handler"),
])
async def test_refusals_answer_200_with_nrdp_message_and_write_nothing(client: TestClient, reader: FifoReader,
                                                                       fields: dict[str, str],
                                                                       message: str) -> None:
    status, _, text = await nrdp(client, **fields)
    assert status == 200, text
    answer = parsed(text)
    assert (answer["status"], answer["message"]) == ("-1", message), text
    assert reader.read_lines() == []


async def test_submitcmd_goes_through_the_command_table(client: TestClient, reader: FifoReader) -> None:
    status, _, text = await nrdp(client, token=TOKEN, cmd="submitcmd",
                                 command="SCHEDULE_FORCED_SVC_CHECK;web1;http;1110741500")
    assert status == 200 and parsed(text) == {"status": "0", "message": "OK"}
    assert await collect(reader, 1) == [f"[{NOW}] SCHEDULE_FORCED_SVC_CHECK;web1;http;1110741500".encode()]


def test_raw_command_refusals_name_the_shape() -> None:
    with pytest.raises(InvalidInput, match=r"takes 4 fields \(PROCESS_SERVICE_CHECK_RESULT;host_name"):
        command_from_text("PROCESS_SERVICE_CHECK_RESULT;h;s", EngineKind.NAEMON, now=NOW, author="a")


_NAMES = st.text(st.characters(blacklist_characters=";\r\n\0", blacklist_categories=("Cs",)), min_size=1,
                 max_size=20).filter(lambda s: s.strip() == s)
_OUTPUT = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), min_size=1,
                  max_size=40).filter(lambda s: s.strip() == s)


@given(host=_NAMES, service=_NAMES, state=st.integers(0, 3), output=_OUTPUT, stamp=st.integers(0, 4_000_000_000))
def test_a_raw_command_reads_back_as_the_command_it_renders(host: str, service: str, state: int, output: str,
                                                           stamp: int) -> None:
    command = command_from_params(COMMANDS["PROCESS_SERVICE_CHECK_RESULT"], {
        "host_name": host, "service_description": service, "status_code": state, "plugin_output": output},
        now=stamp, author="a")
    line = command_line(command, EngineKind.NAEMON)
    assert command_from_text(line, EngineKind.NAEMON, now=0, author="a") == command


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@given(results=st.lists(st.tuples(st.sampled_from(["host", "service"]), _TEXT, _TEXT, _TEXT, _TEXT), max_size=5),
       cdata=st.booleans())
def test_the_xml_reader_gives_back_every_field_as_sent(results: list[tuple[str, str, str, str, str]],
                                                       cdata: bool) -> None:
    from xml.sax.saxutils import escape

    from bridge.intake.nrdp import _xml_results

    def text(value: str) -> str:
        return f"<![CDATA[{value}]]>" if cdata and "]]>" not in value else escape(value)

    xml = "<?xml version='1.0'?><checkresults>" + "".join(
        f"<checkresult type='{kind}'><hostname>{text(h)}</hostname><servicename>{text(s)}</servicename>"
        f"<state>{text(state)}</state><output>{text(out)}</output></checkresult>"
        for kind, h, s, state, out in results) + "</checkresults>"
    assert _xml_results(xml) == [{"type": kind, "hostname": h, "servicename": s, "state": state, "output": out}
                                 for kind, h, s, state, out in results]
