"""NRDP's clients unchanged, end to end: the daemon as a subprocess in front of a real Nagios 4, each effect read
from status.dat. No NRDP client is packaged for Debian or PyPI (docs/research/nrdp-icinga.md), so these send
exactly what NRDP's ``clients/send_nrdp.sh`` (``curl -f -d token=…&cmd=submitcheck&xml=…`` to ``<url>/``) and
``send_nrdp.py`` (a urllib GET with ``XMLDATA``) send, and read the answers the way those clients read them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from xml.dom.minidom import parseString

import pytest

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import TOKEN, BridgeProcess
from tests.helpers import read_status, wait_for

HOST = "nrdp-host"


def curl() -> str:
    found = shutil.which("curl")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("curl is not installed: .ci/run installs it")
        pytest.skip("curl is not installed")
    return found


def send_nrdp_sh(url: str, token: str, xml: str) -> tuple[int, str, str]:
    """send_nrdp.sh's send_data(): the XML goes into the form as it is (only the output's & < > were %-encoded
    by the script), to "$url/"; then its two sed lines read <status> and <message>."""
    pdata = f"token={token}&cmd=submitcheck&xml={xml}"
    done = subprocess.run([curl(), "-f", "--silent", "--insecure", "-d", pdata, f"{url}/"], capture_output=True,
                          text=True, timeout=30)
    flat = done.stdout.replace("\n", " ")  # `echo $rslt` joins the lines
    status = re.sub(r".*<status>(.*)</status>.*", r"\1", flat) if "<status>" in flat else ""
    message = re.sub(r".*<message>(.*)</message>.*", r"\1", flat) if "<message>" in flat else ""
    return done.returncode, status, message


def sh_xml(service: str, state: int, output: str) -> str:
    output = output.replace("&", "%26").replace("<", "%3C").replace(">", "%3E")  # as the script does
    return (f"<?xml version='1.0'?>\n    <checkresults>\n    <checkresult type='service' checktype='1'>\n"
            f"        <servicename>{service}</servicename><hostname>{HOST}</hostname>\n"
            f"    <state>{state}</state>\n    <output><![CDATA[{output}]]></output>\n    </checkresult>\n"
            "    </checkresults>")


def send_nrdp_py(url: str, token: str, xml: str) -> str:
    """send_nrdp.py's post_data(): a GET of url + "/" (when it does not end in one) with token, cmd, XMLDATA;
    the answer's <status> text (it prints the <message> otherwise, and exits 0 either way)."""
    if not url.endswith("/"):
        url += "/"
    params = urllib.parse.urlencode({"token": token.strip(), "cmd": "submitcheck", "XMLDATA": xml})
    with urllib.request.urlopen(f"{url}?{params}", timeout=30) as answer:
        result = parseString(answer.read().decode("utf-8"))
    return "".join(node.data for node in result.getElementsByTagName("status")[0].childNodes
                   if node.nodeType == node.TEXT_NODE)


def service(nagios: NagiosSandbox, description: str, **expected: str) -> dict[str, str]:
    def current() -> dict[str, str] | None:
        found = read_status(nagios.status_file).get((HOST, description), {})
        return found if found and all(found.get(k) == v for k, v in expected.items()) else None
    return wait_for(current, what=f"{HOST}/{description} to show {expected}")


def test_send_nrdp_sh_reaches_the_engine_through_the_url_its_help_gives(bridge: BridgeProcess,
                                                                      nagios: NagiosSandbox) -> None:
    code, status, message = send_nrdp_sh(f"{bridge.url}/nrdp/", TOKEN, sh_xml("sh", 2, "disk <5% & falling"))
    assert (code, status, message) == (0, "0", "OK")
    found = service(nagios, "sh", current_state="2")
    assert found["plugin_output"] == "disk <5% & falling"


def test_send_nrdp_sh_reports_a_bad_token_and_nothing_is_written(bridge: BridgeProcess,
                                                                nagios: NagiosSandbox) -> None:
    assert send_nrdp_sh(f"{bridge.url}/nrdp", "not-a-token", sh_xml("bad", 2, "x")) == (0, "-1", "BAD TOKEN")
    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            f"<checkresults><checkresult type='service'><hostname>{HOST}</hostname><servicename>bad</servicename>"
            "<state>2</state><output>&b;</output></checkresult></checkresults>")
    assert send_nrdp_sh(f"{bridge.url}/nrdp", TOKEN, bomb) == (0, "-1", "BAD XML")
    assert send_nrdp_sh(f"{bridge.url}/nrdp", TOKEN, sh_xml("bad", 2, "x").replace("</checkresults>", "")) \
        == (0, "-1", "BAD XML")
    # then a good one: it is the first result the engine ever saw for this service
    assert send_nrdp_sh(f"{bridge.url}/nrdp", TOKEN, sh_xml("bad", 1, "the first")) == (0, "0", "OK")
    found = service(nagios, "bad", current_state="1")
    assert found["plugin_output"] == "the first"
    log = "\n".join(nagios.log_lines())
    assert f"{HOST};bad;2" not in log


def test_send_nrdp_py_gets_its_status_by_get(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    xml = (f"<?xml version='1.0'?>\n<checkresults>\n<checkresult type='service' checktype='1'><hostname>{HOST}"
           "</hostname><servicename>py</servicename><state>1</state><output>slow &amp; steady|t=3s</output>"
           "</checkresult></checkresults>")
    assert send_nrdp_py(f"{bridge.url}/nrdp", TOKEN, xml) == "0"
    found = service(nagios, "py", current_state="1")
    assert (found["plugin_output"], found["performance_data"]) == ("slow & steady", "t=3s")


def test_readme_json_and_submitcmd_examples(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    json_data = ('{ "checkresults": [ { "checkresult": { "type": "service" }, "hostname": "nrdp-host", '
                 '"servicename": "json", "state": "1", "output": "WARNING: The disk is 75% full | disk_usage=75%;" '
                 "} ] }")
    done = subprocess.run([curl(), "-f", "-s", "-d", f"token={TOKEN}&cmd=submitcheck&json={json_data}",
                           f"{bridge.url}/nrdp/"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout == ('{"result":{"status":0,"message":"OK","meta":'
                                                    '{"output":"1 checks processed"}}}'), done.stdout
    service(nagios, "json", current_state="1")
    done = subprocess.run([curl(), "-f", "-s", "-d", f"token={TOKEN}&cmd=submitcmd&command=DISABLE_SVC_CHECK;"
                           f"{HOST};json", f"{bridge.url}/nrdp/"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "<status>0</status>" in done.stdout, done.stdout
    service(nagios, "json", active_checks_enabled="0")
