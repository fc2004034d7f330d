"""``[server] workers = 2`` end to end: two worker processes on one port, one hub that delivers, a real Nagios 4."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bridge.daemon.sandbox import NagiosSandbox
from tests.conftest import bridge_config, start_bridge
from tests.helpers import engine_outputs, http, read_status, wait_for

AUTH = ("u", "p")


def workers_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def metric(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_results_through_either_worker_reach_the_engine_and_the_one_freshness_table(nagios: NagiosSandbox,
                                                                                     tmp_path: Path) -> None:
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", nagios, known_objects=True,
                                        server="workers = 2"))
    try:
        url = bridge.wait_listening()
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2, what="two workers")
        # Refused by the hub when it renders the line (Nagios 4 would cut the value): a 400 naming the field.
        status, body = http("POST", f"{url}/api/command/CHANGE_CUSTOM_SVC_VAR",
                            {"host_name": "workers-host", "service_description": "svc-0", "varname": "owner",
                             "varvalue": "night; day"}, auth=AUTH)
        assert status == 400 and "varvalue" in body["full_error"], body
        errors: list[object] = []

        def client(service: int) -> None:  # a new connection per request: the kernel spreads them over workers
            for i in range(15):
                status, body = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                                    {"host_name": "workers-host", "service_description": f"svc-{service}",
                                     "status_code": i % 3, "plugin_output": f"worker result {i:02d}"}, auth=AUTH)
                if status != 200:
                    errors.append(body)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        status, body = http("POST", f"{url}/api/results", [{"host_name": "nobody-knows", "status_code": 0}],
                            auth=AUTH)
        assert status == 400 and "nobody-knows" in body["full_error"], body  # validated in the worker, as ever
        wait_for(lambda: all(read_status(nagios.status_file).get(("workers-host", f"svc-{n}"), {})
                             .get("plugin_output") == "worker result 14" for n in range(8)),
                 what="every service's last result in status.dat")
        assert not [line for line in nagios.log_lines() if "CHANGE_CUSTOM_SVC_VAR;workers-host" in line]
        # Answered by the hub, through whichever worker took the connection: one table, one engine state.
        status, body = http("GET", f"{url}/api/freshness?host=workers-host", auth=AUTH)
        assert status == 200 and len(body["objects"]) == 8, body
        status, body = http("GET", f"{url}/health")
        assert (status, body["status"]) == (200, "ok")
        status, body = http("PUT", f"{url}/api/results", auth=AUTH)
        assert status == 405 and set(body) == {"error", "full_error"}
        # The hub's /metrics counts what the workers answered themselves too (they send it within a second).
        wait_for(lambda: metric(url, "naemon_bridge_request_duration_seconds_count", api="op5") >= 121
                 and metric(url, "naemon_bridge_results_refused_total", reason="unknown_object") == 1,
                 what="the workers' requests and refusal in the hub's /metrics")
        assert metric(url, "naemon_bridge_results_accepted_total") >= 120
    finally:
        assert bridge.stop() == 0


def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(stopped_engine: NagiosSandbox,
                                                                tmp_path: Path) -> None:
    """And with the engine down, results taken by both workers wait in the hub's one spool and arrive in the
    order they were answered."""
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", stopped_engine, server="workers = 2"))
    try:
        url = bridge.wait_listening()
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2, what="two workers")
        first = workers_of(bridge.process.pid)[0]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2 and first not in workers_of(bridge.process.pid),
                 what="a new worker in place of the killed one")
        assert f"(pid {first}) exited with -9; starting it again" in bridge.log_text()
        for i in range(30):  # each on a new connection, so both workers take some
            status, body = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT",
                                {"host_name": "outage-host", "service_description": "svc", "status_code": 0,
                                 "plugin_output": f"result {i:02d}"}, auth=AUTH)
            assert status == 200, body
        status, body = http("GET", f"{url}/health")
        assert body["spool"]["results"] == 30, body
        stopped_engine.start()
        wait_for(lambda: read_status(stopped_engine.status_file).get(("outage-host", "svc"), {})
                 .get("plugin_output") == "result 29", what="the last spooled result in status.dat")
        assert engine_outputs(stopped_engine, "outage-host", "svc") == [f"result {i:02d}" for i in range(30)]
        workers = workers_of(bridge.process.pid)
    finally:
        assert bridge.stop() == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_workers_stop_when_the_hub_is_killed(stopped_engine: NagiosSandbox, tmp_path: Path) -> None:
    """No worker holds the port alone: without its hub it stops within a second or two."""
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", stopped_engine, server="workers = 2"))
    try:
        bridge.wait_listening()
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2, what="two workers")
        workers = workers_of(bridge.process.pid)
        bridge.process.kill()
        bridge.process.wait()
        wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers to stop")
    finally:
        bridge.stop()


def test_forwarded_requests_keep_the_callers_address_and_dialect(nagios: NagiosSandbox, tmp_path: Path) -> None:
    """The hub throttles failed logins per client address also for requests a worker forwards to it, and a body
    too large for a forwarded route is refused in that route's dialect."""
    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", nagios, server="workers = 2",
                                        extra="[auth]\nmax_failures = 3\n"))
    try:
        url = bridge.wait_listening()
        port = int(url.rsplit(":", 1)[1])
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2, what="two workers")
        for _ in range(3):
            assert http("GET", f"{url}/api/freshness", auth=("u", "wrong"))[0] == 401
        assert http("GET", f"{url}/api/freshness", auth=AUTH)[0] == 429  # this address is throttled …
        other = HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        other.request("GET", "/api/freshness", headers={"Authorization": "Basic " + base64.b64encode(b"u:p")
                                                        .decode(), "X-Forwarded-For": "127.0.0.1"})
        assert other.getresponse().status == 200  # … another is not, whatever it claims to be
        status, body = http("PATCH", f"{url}/host/workers-host", raw=b"{" + b" " * (5 << 20) + b"}", auth=AUTH)
        assert status == 413 and body["_status"] == "ERR", body
    finally:
        assert bridge.stop() == 0



def test_the_status_pages_login_through_a_worker_goes_back_to_its_client_only(nagios: NagiosSandbox,
                                                                              tmp_path: Path) -> None:
    """A worker forwards /status to the hub on one client session: the hub's redirect and session cookie go back
    to the client that logged in, and never along with another client's requests."""
    import re

    bridge = start_bridge(bridge_config(tmp_path / "bridge.toml", nagios, server="workers = 2"))
    try:
        url = bridge.wait_listening()
        port = int(url.rsplit(":", 1)[1])
        wait_for(lambda: len(workers_of(bridge.process.pid)) == 2, what="two workers")

        def request(method: str, path: str, body: str | None = None, cookie: str = "") -> tuple[int, dict, str]:
            connection = HTTPConnection("127.0.0.1", port, timeout=10)  # a new one each: either worker
            headers = {"Accept": "text/html", "Cookie": cookie}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            cookies = dict(header.split(";", 1)[0].split("=", 1) for name, header in response.getheaders()
                           if name.lower() == "set-cookie")
            return response.status, {"location": response.getheader("Location"), **cookies}, response.read().decode()

        for _ in range(4):  # both workers, whichever the kernel picks
            status, headers, form = request("GET", "/status/login")
            assert status == 200
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            status, headers, _ = request("POST", "/status/login", f"username=u&password=p&csrf_token={csrf}",
                                         cookie=f"naemon_bridge_login_csrf={headers['naemon_bridge_login_csrf']}")
            assert (status, headers["location"]) == (303, "/status")
            session = headers["naemon_bridge_status"]
            assert request("GET", "/status", cookie=f"naemon_bridge_status={session}")[0] == 200
            status, headers, _ = request("GET", "/status")  # another client, no cookie: not logged in
            assert (status, headers["location"]) == (303, "/status/login")
    finally:
        assert bridge.stop() == 0
