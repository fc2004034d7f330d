"""[cluster] end to end: a real three-node JetStream cluster (nats-server), two real Nagios 4, a sink beside each,
two edges — every part a process of its own, started as a user starts it. One cluster for the module.

Each test uses hosts of its own, so the tests never read each other's results.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from bridge.config.model import ClusterConfig
from bridge.core.command_table import COMMANDS
from bridge.core.routing import encode_message
from bridge.core.values import Command
from bridge.daemon.nats_sandbox import NatsCluster, nats_binary
from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService
from bridge.engine.cluster import ClusterConnection, JetStreamTransport
from tests.conftest import TEST_USER, BridgeProcess, require_nagios, start_bridge
from tests.helpers import engine_outputs, frozen, http, wait_for
from tests.test_demo import _run_demo, _stop, _wait_line

AUTH = ("u", "p")
TESTS = ("route", "node", "sink", "down", "cluster")
EU_HOSTS = [SandboxHost(f"eu-{name}", (SandboxService("svc"),)) for name in TESTS]
US_HOSTS = [SandboxHost(f"us-{name}", (SandboxService("svc"),)) for name in TESTS]


def require_nats() -> None:
    if nats_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nats-server is not installed: .ci/run must install it")
        pytest.skip("nats-server (Debian's nats-server) is not installed")


@dataclass
class Site:
    nats: NatsCluster
    engines: dict[str, NagiosSandbox]
    sinks: dict[str, BridgeProcess]
    edges: list[BridgeProcess]
    folder: Path

    def start_sink(self, engine: str) -> BridgeProcess:
        sink = start_bridge(self.folder / f"sink-{engine}.toml")
        sink.wait_listening()
        self.sinks[engine] = sink
        return sink


def _cluster_section(nats: NatsCluster, role: str, engine: str | None = None) -> str:
    servers = ", ".join(f'"{url}"' for url in nats.urls)
    return (f'[cluster]\nrole = "{role}"\nservers = [{servers}]\nreplicas = 3\n'
            + (f'engine = "{engine}"\n' if engine else ""))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_nagios()
    require_nats()
    folder = tmp_path_factory.mktemp("cluster")
    nats = NatsCluster(folder / "nats", 3)
    engines = {"eu": NagiosSandbox(folder / "nagios-eu", EU_HOSTS), "us": NagiosSandbox(folder / "nagios-us", US_HOSTS)}
    site = Site(nats, engines, {}, [], folder)
    try:
        nats.start()
        for name, engine in engines.items():
            engine.verify()
            engine.start()
            (folder / f"sink-{name}.toml").write_text(
                f'[server]\nlisten = "127.0.0.1:0"\n[engine]\nkind = "nagios"\ncommand_file = "{engine.command_file}"\n'
                f'objects_cache = "{engine.objects_cache}"\n[spool]\ndirectory = "{folder / f"spool-sink-{name}"}"\n'
                f'{_cluster_section(nats, "sink", name)}{TEST_USER}')
            site.start_sink(name)
        for index in range(2):
            path = folder / f"edge-{index}.toml"
            path.write_text(f'[server]\nlisten = "127.0.0.1:0"\n[engine]\nkind = "nagios"\n'
                            f'[spool]\ndirectory = "{folder / f"spool-edge-{index}"}"\n'
                            f'{_cluster_section(nats, "edge")}{TEST_USER}')
            edge = start_bridge(path)
            site.edges.append(edge)
            edge.wait_listening()
        for edge in site.edges:  # each edge has learnt both engines' hosts
            wait_for(lambda e=edge: http("GET", f"{e.url}/health")[1].get("cluster", {}).get("engines") == ["eu", "us"],
                     what="the edges to learn both engines")
        yield site
    except BaseException:
        for name, process in [*[(f"edge {i}", e) for i, e in enumerate(site.edges)], *site.sinks.items()]:
            print(f"--- {name}\n{process.log_text()[-3000:]}")
        raise
    finally:
        for process in [*site.edges, *site.sinks.values()]:
            process.stop()
        for engine in engines.values():
            engine.stop()
        nats.stop()


def _post(url: str, host: str, output: str) -> int:
    status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT", auth=AUTH,
                     body={"host_name": host, "service_description": "svc", "status_code": 0, "plugin_output": output})
    return status


def _arrived(engine: NagiosSandbox, host: str, expected: list[str]) -> bool:
    got = engine_outputs(engine, host, "svc")
    return set(expected) <= set(got)


def test_results_reach_the_engine_that_has_their_host(site: Site) -> None:
    first, second = site.edges
    assert _post(first.url, "eu-route", "to eu via edge 0") == 200
    assert _post(second.url, "us-route", "to us via edge 1") == 200
    assert _post(first.url, "us-route", "to us via edge 0") == 200
    wait_for(lambda: _arrived(site.engines["eu"], "eu-route", ["to eu via edge 0"]), what="eu's result")
    wait_for(lambda: _arrived(site.engines["us"], "us-route", ["to us via edge 1", "to us via edge 0"]),
             what="us's results")
    assert engine_outputs(site.engines["us"], "eu-route", "svc") == []  # the other engine never saw it
    # An unknown host is refused at the edge, as one bridge beside one engine refuses it.
    status, body = http("POST", f"{first.url}/api/command/PROCESS_SERVICE_CHECK_RESULT", auth=AUTH,
                        body={"host_name": "nowhere", "service_description": "svc", "status_code": 0})
    assert status == 400 and "the engine has no host 'nowhere'" in body["full_error"]
    status, health = http("GET", f"{first.url}/health")
    assert status == 200 and health["cluster"]["role"] == "edge" and health["cluster"]["connected"]
    status, health = http("GET", f"{site.sinks['eu'].url}/health")
    assert health["cluster"]["role"] == "sink" and health["cluster"]["engine"] == "eu"
    assert "naemon_bridge_cluster_stream_lag" in _metrics(site.sinks["eu"].url)
    # The status page of each role: an edge publishes into the stream, a sink's results come from it.
    edge_page = _status_page(first.url)
    assert 'id="cluster-role">edge<' in edge_page and "JetStream stream" in edge_page
    assert "accepted · op5" in edge_page and "published to JetStream" in edge_page
    sink_page = _status_page(site.sinks["eu"].url)
    assert 'id="cluster-role">sink<' in sink_page and 'id="cluster-lag">' in sink_page
    assert "accepted · cluster" in sink_page and "delivered to the engine" in sink_page


def _status_page(url: str) -> str:
    request = urllib.request.Request(f"{url}/status", headers={
        "Authorization": "Basic " + base64.b64encode(b"u:p").decode()})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def _metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        return answer.read().decode()


def test_a_node_killed_mid_stream_loses_nothing(site: Site) -> None:
    edge = site.edges[0]
    expected = [f"node {i:03d}" for i in range(120)]
    statuses: list[int] = []
    sent = threading.Event()

    def send() -> None:
        for index, output in enumerate(expected):
            statuses.append(_post(edge.url, "eu-node", output))
            if index == 30:
                sent.set()

    sender = threading.Thread(target=send)
    sender.start()
    sent.wait(30)
    victim = site.nats.nodes[0]
    victim.kill()
    sender.join(60)
    assert statuses == [200] * len(expected)
    wait_for(lambda: _arrived(site.engines["eu"], "eu-node", expected), timeout=60, what="every result")
    victim.start()
    site.nats.wait_healthy(nodes=[victim])


def _consumer_pending(site: Site, durable: str) -> tuple[int, int]:
    """JetStream's own count for a consumer: (not yet delivered, delivered and not yet acknowledged)."""
    async def info() -> tuple[int, int]:
        client = await nats.connect(servers=site.nats.urls)
        try:
            found = await client.jetstream().consumer_info("NAEMON_BRIDGE", durable)
            return found.num_pending or 0, found.num_ack_pending or 0
        finally:
            await client.close()

    return asyncio.run(info())


def test_a_sink_killed_mid_drain_and_restarted_loses_nothing(site: Site) -> None:
    """Killed while it holds results it took and has not acknowledged: some already in the engine's pipe, the
    rest only in its memory (the engine frozen with SIGSTOP, the sink waiting for room with engine.busy_wait
    = 30 s) — and more not yet taken from the stream. JetStream delivers the unacknowledged ones again."""
    engine = site.engines["eu"]
    site.sinks["eu"].process.send_signal(signal.SIGKILL)
    site.sinks["eu"].process.wait()
    padding = "x" * 200  # 600 lines of ~260 bytes: more than a pipe holds (64 KiB) and more than one fetch
    expected = [f"sink {i:03d} {padding}" for i in range(600)]
    for output in expected:  # they wait in the stream: no sink takes them
        assert _post(site.edges[1].url, "eu-sink", output) == 200
    patient = site.folder / "sink-eu-patient.toml"
    patient.write_text((site.folder / "sink-eu.toml").read_text().replace("[engine]\n", "[engine]\nbusy_wait = 30\n"))
    with frozen(engine):
        sink = start_bridge(patient)
        sink.wait_listening()

        def holding() -> bool:
            waiting, unacknowledged = _consumer_pending(site, "sink-eu")
            return unacknowledged > 0 and waiting > 0 and http("GET", f"{sink.url}/health")[1]["spool"]["results"] == 0

        wait_for(holding, what="the sink to hold unacknowledged results, none spooled")
        sink.process.send_signal(signal.SIGKILL)
        sink.process.wait()
    site.start_sink("eu")
    wait_for(lambda: _arrived(engine, "eu-sink", expected), timeout=60, what="every result after the restart")
    # Those that reached the pipe before the kill come again too (at least once): let them, before the next test.
    wait_for(lambda: _consumer_pending(site, "sink-eu") == (0, 0), timeout=60, what="every redelivery taken")


def test_an_engine_down_its_results_wait_in_the_stream_the_other_is_unaffected(site: Site) -> None:
    eu, us = site.engines["eu"], site.engines["us"]
    sink = site.sinks["eu"]
    eu.stop()
    try:
        wait_for(lambda: http("GET", f"{sink.url}/health")[1]["cluster"]["holding_back"], what="the sink to hold back")
        spooled_before = http("GET", f"{sink.url}/health")[1]["spool"]["results"]  # taken before it noticed
        waiting = [f"down {i}" for i in range(20)]
        for output in waiting:
            assert _post(site.edges[0].url, "eu-down", output) == 200
        assert _post(site.edges[0].url, "us-down", "us unaffected") == 200
        wait_for(lambda: _arrived(us, "us-down", ["us unaffected"]), what="the other engine's result")
        wait_for(lambda: http("GET", f"{sink.url}/health")[1]["cluster"]["stream_lag"] == len(waiting),
                 what="eu's results to wait in the stream")
        status, health = http("GET", f"{sink.url}/health")
        assert status == 503 and health["spool"]["results"] == spooled_before  # in the stream, not the sink's spool
    finally:
        eu.start()
    wait_for(lambda: _arrived(eu, "eu-down", waiting), timeout=60, what="eu's results once it is back")


def test_the_whole_cluster_down_the_edge_spools_answers_2xx_and_forwards(site: Site) -> None:
    edge = site.edges[1]
    site.nats.stop()
    try:
        wait_for(lambda: not http("GET", f"{edge.url}/health")[1]["cluster"]["connected"], what="the edge to see it")
        expected = [f"spooled {i}" for i in range(30)]
        for output in expected[:20]:
            assert _post(edge.url, "us-cluster", output) == 200
        status, health = http("GET", f"{edge.url}/health")
        assert status == 503 and health["spool"]["results"] > 0
        # The log names what stopped taking results: an edge has no command pipe.
        log_text = edge.log_text()
        assert "JetStream stopped taking results" in log_text and "command pipe" not in log_text, log_text
        # Restarted during the outage, the edge routes by the objects it saved and keeps its spool.
        assert edge.stop() == 0, edge.log_text()
        edge = site.edges[1] = start_bridge(edge.config_path)
        edge.wait_listening()
        wait_for(lambda: http("GET", f"{edge.url}/health")[1]["cluster"]["engines"] == ["eu", "us"],
                 what="the restarted edge to read its saved objects")
        for output in expected[20:]:
            assert _post(edge.url, "us-cluster", output) == 200
    finally:
        site.nats.start(timeout=90)  # three nodes from cold: JetStream elects its leaders again
    try:
        wait_for(lambda: _arrived(site.engines["us"], "us-cluster", expected), timeout=120,
                 what="the spooled results once the cluster is back")
        wait_for(lambda: http("GET", f"{edge.url}/health")[1]["spool"]["results"] == 0, timeout=60,
                 what="the edge's spool to empty")
    except AssertionError:
        print(f"--- edge\n{edge.log_text()[-4000:]}\n--- sink us\n{site.sinks['us'].log_text()[-4000:]}")
        raise


def test_a_publish_retried_with_its_id_is_stored_once(site: Site) -> None:
    """An edge that timed out waiting for an ack spools the message and sends it again, with the same id."""
    config = ClusterConfig(role="edge", servers=tuple(site.nats.urls), stream="DEDUP_TEST", replicas=3)
    result = Command(COMMANDS["PROCESS_HOST_CHECK_RESULT"], ("eu-route", "0", "up"), 1700000000)

    async def publish_twice() -> int:
        connection = ClusterConnection(config, "dedup test")
        connection.start()
        try:
            assert await connection.wait_ready(20), connection.problem
            transport = JetStreamTransport(connection)
            line = encode_message("eu", "one-id", [result])
            assert all((await transport.write([line])).taken)
            assert all((await transport.write([line, encode_message("eu", "other-id", [result])])).taken)
            assert connection.js is not None
            return (await connection.js.stream_info("DEDUP_TEST")).state.messages
        finally:
            await connection.close()

    assert asyncio.run(publish_twice()) == 2


def test_the_cluster_demo_routes_a_result_to_its_engine() -> None:
    """``naemon-bridge demo --cluster``, as the README shows it: its own cluster, engines, sinks and edge."""
    require_nagios()
    require_nats()
    process, lines = _run_demo("--cluster")
    try:
        url = _wait_line(lines, "an edge listens on", timeout=60).split("listens on ", 1)[1].split()[0]
        status, _ = http("POST", f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT", auth=("demo", "demo"),
                         body={"host_name": "web-us", "service_description": "http", "status_code": "2",
                               "plugin_output": "down in us"})
        assert status == 200
        line = _wait_line(lines, "PROCESS_SERVICE_CHECK_RESULT;web-us;http;2;down in us")
        assert line.startswith("nagios4 us:")
    finally:
        assert _stop(process) == 0


@pytest.mark.parametrize("server_auth,good,bad", [
    ("authorization {\n  user: bridge\n  password: s3cret\n}\n",
     {"user": "bridge", "password": "s3cret"}, {"user": "bridge", "password": "wrong"}),
    ("authorization {\n  token: t0ken\n}\n", {"token": "t0ken"}, {"token": "other"}),
])
def test_the_cluster_credentials_reach_the_server(tmp_path: Path, server_auth: str, good: dict[str, str],
                                                   bad: dict[str, str]) -> None:
    require_nats()
    nats = NatsCluster(tmp_path / "nats", 1, extra=server_auth)
    nats.start()

    async def attempt(credentials: dict[str, str], *, refused: bool) -> tuple[bool, str]:
        connection = ClusterConnection(ClusterConfig(role="edge", servers=tuple(nats.urls), **credentials), "auth")
        connection.start()
        try:
            if not refused:
                return await connection.wait_ready(10), connection.problem
            deadline = asyncio.get_running_loop().time() + 10  # until the refusal shows (nats-py keeps trying)
            while "authorization" not in connection.problem.lower() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            return connection.ready, connection.problem
        finally:
            await connection.close()

    try:
        assert asyncio.run(attempt(good, refused=False))[0]
        accepted, problem = asyncio.run(attempt(bad, refused=True))
        assert not accepted and "authorization" in problem.lower(), problem
    finally:
        nats.stop()


def test_tls_to_the_cluster_with_a_ca_of_its_own(tmp_path: Path) -> None:
    """A server that requires TLS (tls:// URLs): trusted through tls_ca; without it the certificate is refused."""
    require_nats()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    nats = NatsCluster(tmp_path / "nats", 1, extra=f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}\n')
    nats.start()
    servers = tuple(url.replace("nats://", "tls://") for url in nats.urls)

    async def attempt(tls_ca: Path | None) -> tuple[bool, str]:
        connection = ClusterConnection(ClusterConfig(role="edge", servers=servers, tls_ca=tls_ca), "tls")
        connection.start()
        try:
            return await connection.wait_ready(3 if tls_ca is None else 10), connection.problem
        finally:
            await connection.close()

    try:
        assert asyncio.run(attempt(cert))[0]
        accepted, problem = asyncio.run(attempt(None))
        assert not accepted and "certificate" in problem.lower(), problem
    finally:
        nats.stop()


def test_a_stream_kept_shorter_than_the_duplicate_window_is_created(tmp_path: Path) -> None:
    """JetStream refuses a duplicate window longer than max_age: the window follows a short max_age."""
    require_nats()
    nats = NatsCluster(tmp_path / "nats", 1)
    nats.start()

    async def created() -> tuple[bool, str]:
        connection = ClusterConnection(ClusterConfig(role="edge", servers=tuple(nats.urls), max_age=300), "age")
        connection.start()
        try:
            return await connection.wait_ready(10), connection.problem
        finally:
            await connection.close()

    try:
        ready, problem = asyncio.run(created())
        assert ready, problem
    finally:
        nats.stop()
