"""Nothing acknowledged is lost: kill -9 of the bridge, torn spool tails, SIGTERM under load — with real processes,
a real FIFO and a real Nagios 4, read back from the engine's own log."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
from pathlib import Path

from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService
from bridge.engine.spool import Spool
from tests.conftest import BridgeProcess, bridge_config, require_nagios, start_bridge
from tests.helpers import engine_outputs, http, processes_of, read_status, wait_for

AUTH = ("u", "p")


def send(url: str, output: str, status_code: int = 0) -> int:
    status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                     {"host_name": "outage-host", "service_description": "svc", "status_code": status_code,
                      "plugin_output": output}, auth=AUTH)
    return status


def received(engine: NagiosSandbox) -> list[str]:
    return engine_outputs(engine, "outage-host", "svc")


def wait_received(engine: NagiosSandbox, last: str, timeout: float = 60.0) -> list[str]:
    wait_for(lambda: last in received(engine), timeout=timeout, what=f"the engine to receive {last!r}")
    return received(engine)


def first_occurrences(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def kill_hard(bridge: BridgeProcess) -> None:
    bridge.process.send_signal(signal.SIGKILL)
    bridge.process.wait(10)


def test_kill_9_with_a_full_spool_then_restart_delivers_everything_in_order(stopped_engine: NagiosSandbox,
                                                                             tmp_path: Path) -> None:
    config = bridge_config(tmp_path / "bridge.toml", stopped_engine)
    bridge = start_bridge(config)
    url = bridge.wait_listening()
    outputs = [f"kept {i:03d}" for i in range(200)]
    for output in outputs:
        assert send(url, output) == 200
    kill_hard(bridge)
    stopped_engine.start()
    again = start_bridge(config)
    try:
        again.wait_listening()
        assert "spool" in again.log_text() and "200 results" in again.log_text()
        assert wait_received(stopped_engine, outputs[-1]) == outputs
    finally:
        assert again.stop() == 0


def test_kill_9_mid_drain_then_restart_delivers_everything_in_order(stopped_engine: NagiosSandbox,
                                                                     tmp_path: Path) -> None:
    config = bridge_config(tmp_path / "bridge.toml", stopped_engine)
    bridge = start_bridge(config)
    url = bridge.wait_listening()
    outputs = [f"n {i:05d}" for i in range(20_000)]
    for start in range(0, len(outputs), 100):  # 100 results a request, Alignak style
        document = {"services": {"s": {"name": "svc", "livestate": [
            {"state": "ok", "output": output} for output in outputs[start:start + 100]]}}}
        status, body = http("PATCH", f"{url}/host/outage-host", document, auth=AUTH)
        assert (status, body["_status"]) == (200, "OK"), body
    # Start the engine but freeze it: it takes what fits in its buffers and the pipe, then the drain stalls.
    stopped_engine.start()
    frozen = processes_of(stopped_engine.pid or 0)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        cursor = tmp_path / "spool" / "cursor"
        wait_for(lambda: cursor.exists() and json.loads(cursor.read_text())["offset"] > 0,
                 what="the drain to commit some progress")
        kill_hard(bridge)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    left = Spool(tmp_path / "spool")
    left.open()
    assert 0 < left.pending_results < len(outputs), "killed mid-drain: part delivered, part still spooled"
    left.close()
    again = start_bridge(config)
    try:
        again.wait_listening()
        got = wait_received(stopped_engine, outputs[-1])
        # At least once: a batch in the pipe when the bridge died may come again; nothing is missing or reordered.
        assert first_occurrences(got) == outputs
        assert len(got) - len(outputs) <= 5000, "duplicates are bounded by what was in flight"
    finally:
        assert again.stop() == 0


def test_a_torn_spool_tail_is_reported_and_the_rest_delivered(stopped_engine: NagiosSandbox,
                                                              tmp_path: Path) -> None:
    config = bridge_config(tmp_path / "bridge.toml", stopped_engine)
    bridge = start_bridge(config)
    url = bridge.wait_listening()
    outputs = [f"torn test {i}" for i in range(10)]
    for output in outputs:
        assert send(url, output) == 200
    assert bridge.stop() == 0
    segment = max((tmp_path / "spool").glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-5])  # as if the machine died while the last record was written
    stopped_engine.start()
    again = start_bridge(config)
    try:
        again.wait_listening()
        assert wait_received(stopped_engine, outputs[-2]) == outputs[:-1]
        assert "incomplete last record" in again.log_text()
        assert send(again.url, "after the tear") == 200
        assert wait_received(stopped_engine, "after the tear")[-1] == "after the tear"
    finally:
        assert again.stop() == 0


def test_a_damaged_byte_in_the_spool_costs_that_result_only_and_the_log_names_it(tmp_path: Path) -> None:
    require_nagios()
    services = [f"svc-{n:02d}" for n in range(12)]
    engine = NagiosSandbox(tmp_path / "nagios", [SandboxHost("damage-host", tuple(map(SandboxService, services)))])
    engine.verify()
    config = bridge_config(tmp_path / "bridge.toml", engine)
    bridge = start_bridge(config)
    try:
        url = bridge.wait_listening()
        for service in services:  # the engine is down: each result is acknowledged from the spool
            status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                             {"host_name": "damage-host", "service_description": service, "status_code": 1,
                              "plugin_output": f"spooled for {service}"}, auth=AUTH)
            assert status == 200
    finally:
        assert bridge.stop() == 0
    spool = Spool(tmp_path / "spool")
    spool.open()
    records = spool.read_batch(1 << 30).entries
    spool.close()
    assert len(records) == len(services)
    damaged = records[5]  # svc-05's record: one byte of its output goes bad on disk
    segment = tmp_path / "spool" / f"{damaged.segment:012d}.seg"
    data = bytearray(segment.read_bytes())
    data[damaged.end - 3] ^= 0x20
    segment.write_bytes(bytes(data))
    engine.start()
    again = start_bridge(config)
    try:
        again.wait_listening()
        expected = {service: f"spooled for {service}" for service in services if service != "svc-05"}

        def applied() -> dict[str, str]:
            status = read_status(engine.status_file)
            return {service: status.get(("damage-host", service), {}).get("plugin_output", "")
                    for service in services}

        wait_for(lambda: applied()["svc-11"] == expected["svc-11"], timeout=60, what="the last spooled result")
        outputs = applied()
        assert {service: outputs[service] for service in expected} == expected
        assert outputs["svc-05"] == "", "the damaged result must never reach the engine, not even mangled"
        log = again.log_text()
        assert (f"spool segment {segment.name}: bytes {damaged.offset}-{damaged.end} "
                f"({damaged.end - damaged.offset} bytes) are damaged: 1 acknowledged record (one request's results) "
                f"is lost") in log
        assert "PROCESS_SERVICE_CHECK_RESULT;damage-host;svc-05" in log
        assert "never acknowledged" not in log
        with urllib.request.urlopen(f"{again.url}/metrics", timeout=30) as response:
            assert "naemon_bridge_spool_lost_records_total 1.0" in response.read().decode()
    finally:
        assert again.stop() == 0
        engine.stop()


def test_health_shows_the_outage_and_the_recovery(stopped_engine: NagiosSandbox, tmp_path: Path) -> None:
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", stopped_engine))
    try:
        url = bridge.wait_listening()
        assert send(url, "during the outage") == 200
        status, body = http("GET", f"{url}/health")
        assert status == 503
        assert body["status"] == "degraded" and body["engine"]["reachable"] is False
        assert body["reasons"][0].startswith("the engine does not take commands: ")
        assert body["spool"]["results"] == 1 and body["spool"]["oldest_age_s"] >= 0
        stopped_engine.start()
        wait_for(lambda: http("GET", f"{url}/health")[0] == 200, what="/health to recover")
        status, body = http("GET", f"{url}/health")
        assert body == {"status": "ok", "reasons": [], "engine": {"reachable": True, "stalled_s": None},
                        "spool": {"results": 0, "bytes": 0, "max_bytes": body["spool"]["max_bytes"],
                                  "oldest_age_s": None},
                        "freshness": {"fresh": 1, "stale": 0}}
        wait_for(lambda: read_status(stopped_engine.status_file).get(("outage-host", "svc"), {})
                 .get("plugin_output") == "during the outage", what="the spooled result in status.dat")
        stopped_engine.stop()
        wait_for(lambda: http("GET", f"{url}/health")[0] == 503, what="/health to notice the engine stopped")
    finally:
        assert bridge.stop() == 0


def test_sigterm_under_load_loses_no_acknowledged_result(stopped_engine: NagiosSandbox, tmp_path: Path) -> None:
    stopped_engine.start()
    config = bridge_config(tmp_path / "bridge.toml", stopped_engine)
    bridge = start_bridge(config)
    url = bridge.wait_listening()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop_sending = threading.Event()

    def client(number: int) -> None:
        for i in range(10_000):
            if stop_sending.is_set():
                return
            output = f"load {number}-{i}"
            try:
                ok = send(url, output) == 200
            except OSError:
                return  # refused or reset: not acknowledged
            if ok:
                with lock:
                    acknowledged.append(output)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 200, what="some load")
    bridge.process.send_signal(signal.SIGTERM)
    assert bridge.process.wait(30) == 0
    stop_sending.set()
    for thread in threads:
        thread.join()
    assert "stopped" in bridge.log_text()
    # What was acknowledged is in the engine, or in the spool for the next start.
    again = start_bridge(config)
    try:
        url = again.wait_listening()
        assert send(url, "last") == 200
        got = set(wait_received(stopped_engine, "last"))
        missing = [output for output in acknowledged if output not in got]
        assert missing == []
    finally:
        assert again.stop() == 0
