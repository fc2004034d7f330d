"""``naemon-bridge send`` in send_nsca 2.10's block mode: input holding ETB (\\x17) is split into results only at
ETB, newlines inside a block are lines of multi-line output; input without ETB stays one result a line."""

from __future__ import annotations

import subprocess
import sys

from bridge.daemon.clients import parse_send_line
from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import ROOT, USER, BridgeProcess
from tests.helpers import read_status, wait_for


def test_a_block_keeps_its_newlines_and_backslashes() -> None:
    assert parse_send_line("\nh\ts\t2\tfirst|a=1\nsecond \\n line\n \t", "\t", block=True) == {
        "host_name": "h", "service_description": "s", "status_code": "2",
        "plugin_output": "first|a=1\nsecond \\n line"}
    assert parse_send_line("h\t0\tup\nmore", "\t", block=True) == {
        "host_name": "h", "status_code": "0", "plugin_output": "up\nmore"}
    # A line (no ETB in the input) keeps NSCA-ng's reading: '\n' written out is a newline.
    assert parse_send_line("h\ts\t0\ta\\nb\n", "\t") == {
        "host_name": "h", "service_description": "s", "status_code": "0", "plugin_output": "a\nb"}


def test_send_splits_at_etb_into_a_real_nagios(bridge: BridgeProcess, nagios: NagiosSandbox) -> None:
    blocks = "nsca-host\tblock\t1\tblock one|x=1\nits long output\nline 3\x17\nnsca-host\t0\tblock host\x17\n"
    run = subprocess.run([sys.executable, "-m", "bridge", "send", "--url", bridge.url], input=blocks, text=True,
                         capture_output=True, cwd=ROOT, timeout=60,
                         env={"NAEMON_BRIDGE_USER": USER[0], "NAEMON_BRIDGE_PASSWORD": USER[1], "PATH": ""})
    assert (run.returncode, run.stdout.strip()) == (0, "2 data packet(s) sent to host successfully."), run
    shown = wait_for(lambda: (s := read_status(nagios.status_file).get(("nsca-host", "block"), {}))
                     .get("plugin_output") == "block one" and s, what="the block's result")
    assert shown["long_plugin_output"] == "its long output\nline 3"
    assert shown["performance_data"] == "x=1"
    wait_for(lambda: read_status(nagios.status_file).get(("nsca-host", None), {}).get("plugin_output")
             == "block host", what="the host block")
