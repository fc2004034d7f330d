"""End to end against a real Nagios 4 whose processes are stopped with SIGSTOP — alive, its pipe open, reading
nothing — and resumed: long lines that the pipe takes only in part, a bridge killed in the middle of one, and what
``/health`` says meanwhile. Effects are read from the engine's status.dat and its log."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService
from tests.conftest import bridge_toml, require_nagios, start_bridge
from tests.helpers import engine_outputs, frozen, http, read_status, wait_for

AUTH = ("u", "p")
HOST = "stall-host"
LONG_SERVICES = [f"svc-{i}" for i in range(8)]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[NagiosSandbox]:
    """A running Nagios 4 of the test's own."""
    require_nagios()
    sandbox = NagiosSandbox(tmp_path / "nagios", [
        SandboxHost(HOST, tuple(SandboxService(name) for name in [*LONG_SERVICES, "short"]))])
    sandbox.verify()
    sandbox.start()
    yield sandbox
    sandbox.stop()


def config(engine: NagiosSandbox, folder: Path, health: str = "") -> Path:
    """A bridge that waits 0.2 s for room in a full pipe before spooling; ``health`` is its [health] section."""
    text = bridge_toml(engine, folder, extra=health).replace("[engine]\n", "[engine]\nbusy_wait = 0.2\n")
    path = folder / "bridge.toml"
    path.write_text(text)
    return path


def send(url: str, service: str, output: str) -> int:
    # A stopped engine must not hold a request: well beyond busy_wait, this deadline only catches a hang.
    status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": HOST, "service_description": service, "status_code": 0,
                      "plugin_output": output}, auth=AUTH, timeout=15)
    return status


def long_output(number: int) -> str:
    """About 18 KB: four full pipe pages and some, so a few free pages take it only in part."""
    return f"long {number} " + chr(ord("a") + number) * 18_000


def output_of(engine: NagiosSandbox, service: str) -> str | None:
    return read_status(engine.status_file).get((HOST, service), {}).get("plugin_output")


def swallowed(engine: NagiosSandbox) -> list[str]:
    """Engine log lines where one command carries another inside it."""
    return [line for line in engine.log_lines()
            if "EXTERNAL COMMAND:" in line and line.count("PROCESS_SERVICE_CHECK_RESULT") > 1]


def test_long_results_sent_to_a_stopped_engine_are_acknowledged_and_none_swallows_another(
        engine: NagiosSandbox, tmp_path: Path) -> None:
    bridge = start_bridge(config(engine, tmp_path))
    try:
        url = bridge.wait_listening()
        sent = {service: long_output(number) for number, service in enumerate(LONG_SERVICES[:6])}
        with frozen(engine):
            for service, output in sent.items():
                assert send(url, service, output) == 200
            assert send(url, "short", "short after the long ones") == 200
            assert "partly in it" in bridge.log_text(), "the stopped engine's pipe took a long line in part"
        wait_for(lambda: output_of(engine, "short") == "short after the long ones", timeout=30,
                 what="the short result in status.dat")
        for service, output in sent.items():
            assert output_of(engine, service) == output
            # Finished in place by the same descriptor: the engine saw each whole, once, never a fragment.
            assert engine_outputs(engine, HOST, service) == [output]
        assert engine_outputs(engine, HOST, "short") == ["short after the long ones"]
        assert swallowed(engine) == []
    finally:
        assert bridge.stop() == 0, bridge.log_text()


def test_a_bridge_killed_in_the_middle_of_a_long_line_ends_it_before_the_next_result(
        engine: NagiosSandbox, tmp_path: Path) -> None:
    path = config(engine, tmp_path)
    bridge = start_bridge(path)
    url = bridge.wait_listening()
    sent: dict[str, str] = {}
    with frozen(engine):
        for number, service in enumerate(LONG_SERVICES):
            sent[service] = long_output(number)
            assert send(url, service, sent[service]) == 200
            if "partly in it" in bridge.log_text():
                break
        else:
            raise AssertionError("the stopped engine's pipe never took a long line in part")
        bridge.process.send_signal(signal.SIGKILL)  # a fragment in the pipe, its rest in the dead bridge
        bridge.process.wait(10)
        again = start_bridge(path)
        try:
            url = again.wait_listening()
            assert "stopped in the middle of a line" in again.log_text()
            assert send(url, "short", "the next result") == 200
        except BaseException:
            again.stop()
            raise
    try:
        wait_for(lambda: output_of(engine, "short") == "the next result", timeout=30,
                 what="the next result in status.dat")
        assert engine_outputs(engine, HOST, "short") == ["the next result"], "applied whole, on its own"
        for service, output in sent.items():
            assert output_of(engine, service) == output
            arrived = engine_outputs(engine, HOST, service)
            # The fragment, ended with a line break, reaches the engine as a truncated copy just before the
            # whole line: at least once, never anything else.
            assert arrived[-1] == output and all(output.startswith(copy) for copy in arrived)
        assert swallowed(engine) == []
    finally:
        assert again.stop() == 0, again.log_text()


def test_health_sees_a_stopped_engine_and_no_request_waits_for_it(engine: NagiosSandbox, tmp_path: Path) -> None:
    bridge = start_bridge(config(engine, tmp_path, health="[health]\nstalled_after = 0.5\nmax_spool_age = 1.5\n"))
    try:
        url = bridge.wait_listening()
        status, body = http("GET", f"{url}/health")
        assert (status, body["status"], body["reasons"]) == (200, "ok", [])
        outputs = [f"result {i:03d} " + "x" * 380 for i in range(300)]  # lines of about 460 bytes
        with frozen(engine):
            for output in outputs:  # the pipe fills after ~130 of them; the rest are spooled, each answered
                assert send(url, "short", output) == 200
            status, body = wait_for(
                lambda: (answer := http("GET", f"{url}/health")) and
                any("has taken nothing" in reason for reason in answer[1]["reasons"]) and answer,
                what="/health to see the stalled engine")
            assert (status, body["status"], body["engine"]["reachable"]) == (503, "degraded", True)
            assert body["engine"]["stalled_s"] >= 0.5 and body["spool"]["results"] > 0
            assert "health.stalled_after = 0.5 s" in " ".join(body["reasons"])
            wait_for(lambda: any("oldest spooled result" in reason
                                 for reason in http("GET", f"{url}/health")[1]["reasons"]),
                     what="/health to report the spool's age")
        wait_for(lambda: output_of(engine, "short") == outputs[-1], timeout=30,
                 what="the last result in status.dat")
        assert engine_outputs(engine, HOST, "short") == outputs
        wait_for(lambda: http("GET", f"{url}/health")[0] == 200, what="/health to recover")
        status, body = http("GET", f"{url}/health")
        assert (body["status"], body["reasons"], body["engine"]) == ("ok", [], {"reachable": True,
                                                                               "stalled_s": None})
    finally:
        assert bridge.stop() == 0, bridge.log_text()
