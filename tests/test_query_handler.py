"""Naemon's query handler as the transport, against a peer that answers as engine.md records (tests/qh_peer.py):
real multi-line output, the engine's refusals reported back, no pipelining, reconnects, the spool in front, and
the whole path HTTP -> core -> transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from bridge.config.model import Config, EngineConfig, SpoolConfig, User
from bridge.core.values import EngineKind
from bridge.engine.delivery import Delivery
from bridge.engine.spool import Spool
from bridge.engine.transport import QueryTransport
from bridge.http.app import make_app
from bridge.intake import DIALECTS
from tests.qh_peer import QueryHandlerPeer

HOSTS = {f"h{i}" for i in range(8)} | {"web1"}
SERVICES = {(h, "svc") for h in HOSTS}
NOW = 1_700_000_000


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "naemon.qh"


@pytest.fixture
async def peer(socket_path: Path) -> AsyncIterator[QueryHandlerPeer]:
    engine = QueryHandlerPeer(socket_path, HOSTS, SERVICES)
    await engine.start()
    yield engine
    await engine.stop()


def result(host: str, n: int, output: str = "ok") -> bytes:
    return f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;{host};svc;0;{output} {n}".encode()


async def wait_applied(peer: QueryHandlerPeer, count: int) -> None:
    for _ in range(500):
        if len(peer.applied) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(peer.applied)} of {count} lines applied")


async def test_real_newlines_reach_the_engine(peer: QueryHandlerPeer, socket_path: Path) -> None:
    transport = QueryTransport(socket_path, connections=2)
    line = f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;svc;1;first line|p=1\nsecond line C:\\new".encode()
    written = await transport.write([line])
    transport.close()
    assert written.taken == [True] and written.refusals == {} and written.stopped is None
    assert peer.applied == [line]  # one request, the newline and the backslash as they are


async def test_refusals_come_back_by_line(peer: QueryHandlerPeer, socket_path: Path) -> None:
    transport = QueryTransport(socket_path)
    lines = [result("web1", 1), f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;ghost;0;x".encode(),
             f"[{NOW}] NO_SUCH_COMMAND;web1".encode(), result("web1", 2)]
    written = await transport.write(lines)
    transport.close()
    assert written.taken == [True] * 4
    assert written.refusals == {1: "Failed validation of service as type service (argument 0)",
                                2: "Unknown command 'NO_SUCH_COMMAND'"}
    assert peer.applied == [lines[0], lines[3]]


async def test_many_lines_over_a_pool_never_pipeline_and_keep_each_hosts_order(peer: QueryHandlerPeer,
                                                                             socket_path: Path) -> None:
    transport = QueryTransport(socket_path, connections=4)
    lines = [result(f"h{n % 8}", n) for n in range(400)]
    written = await transport.write(lines)
    transport.close()
    assert all(written.taken) and peer.pipelined == 0
    assert sorted(peer.applied) == sorted(lines)
    for host in range(8):
        mine = [line for line in peer.applied if line.split(b";")[1] == f"h{host}".encode()]
        assert mine == [line for line in lines if line.split(b";")[1] == f"h{host}".encode()]
    assert peer.connections == 4  # persistent: one connection each, reused


async def test_a_404_closes_the_connection_and_an_engine_restart_is_reconnected(peer: QueryHandlerPeer,
                                                                         socket_path: Path) -> None:
    transport = QueryTransport(socket_path, connections=1)
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(b"@command nope\0")
    assert await reader.read(100) == b"404: Not found\0"  # what the peer (like the engine) answers, then closes
    assert await reader.read(100) == b""
    writer.close()
    assert (await transport.write([result("web1", 1)])).taken == [True]
    await peer.stop()
    await peer.start()  # the engine restarted: socket removed and recreated
    written = await transport.write([result("web1", 2), result("web1", 3)])  # over the pooled, now dead, one
    transport.close()
    assert written.taken == [True, True] and written.stopped is None
    assert peer.applied[-2:] == [result("web1", 2), result("web1", 3)]


async def test_engine_down_spools_then_drains_in_order_through_the_handler(socket_path: Path,
                                                                          tmp_path: Path) -> None:
    delivery = Delivery(QueryTransport(socket_path), Spool(tmp_path / "spool"), max_spool_bytes=1 << 30)
    await delivery.start()
    try:
        lines = [result("h1", n, "multi\nline") for n in range(30)]
        for line in lines:
            assert await delivery.submit([line]) == {}  # no socket: acknowledged from the spool
        assert delivery.spool.pending_results == 30 and not delivery.engine_reachable
        peer = QueryHandlerPeer(socket_path, HOSTS, SERVICES)
        await peer.start()
        try:
            await wait_applied(peer, 30)  # drained with no new traffic, newlines intact through the spool
            assert peer.applied == lines and peer.pipelined == 0
        finally:
            await peer.stop()
    finally:
        await delivery.stop()


# --- the whole path: HTTP -> core -> query handler -----------------------------------------------------------------

@pytest.fixture
async def client(aiohttp_client, peer: QueryHandlerPeer, socket_path: Path, tmp_path: Path) -> TestClient:
    config = Config(engine=EngineConfig(kind=EngineKind.NAEMON, command_file=tmp_path / "unused.cmd",
                                        query_socket=socket_path, query_connections=2),
                    spool=SpoolConfig(directory=tmp_path / "spool"), users=(User("u", password="p"),))
    return await aiohttp_client(make_app(config, DIALECTS, clock=lambda: NOW))


AUTH = {"Authorization": encode_basic_auth("u", "p")}


async def test_op5_multi_line_output_arrives_as_long_output(client: TestClient, peer: QueryHandlerPeer) -> None:
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=AUTH, json={
        "host_name": "web1", "service_description": "svc", "status_code": 2,
        "plugin_output": "disk full|used=99%\nC:\\ 99%\nD:\\ 12%"})
    assert response.status == 200, await response.text()
    assert peer.applied == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;svc;2;disk full|used=99%\nC:\\ 99%\nD:\\ 12%"
                            .encode()]


async def test_alignak_long_output_arrives_as_long_output(client: TestClient, peer: QueryHandlerPeer) -> None:
    response = await client.patch("/host/web1", headers=AUTH, json={"services": {"s": {"name": "svc", "livestate": {
        "state": "warning", "output": "slow", "long_output": "scanner 1: ok\nscanner 2: slow", "perf_data": "t=2"}}}})
    assert (await response.json())["_status"] == "OK"
    assert peer.applied == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;svc;1;slow|t=2\nscanner 1: ok\n"
                            "scanner 2: slow".encode()]


async def test_the_engines_refusal_reaches_each_kind_of_client(client: TestClient, peer: QueryHandlerPeer) -> None:
    # No objects cache: only the engine knows that "ghost" does not exist, and its query handler says so.
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=AUTH, json={
        "host_name": "web1", "service_description": "ghost", "status_code": 0})
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "Refused by the engine"
    assert "Failed validation of service as type service (argument 0)" in body["full_error"]
    response = await client.patch("/host/web1", headers=AUTH, json={
        "services": {"a": {"name": "svc", "livestate": {"state": "ok", "output": "fine"}},
                     "b": {"name": "ghost", "livestate": {"state": "ok"}}}})
    body = await response.json()
    assert response.status == 200 and body["_status"] == "ERR"
    assert body["_issues"] == ["the engine refused PROCESS_SERVICE_CHECK_RESULT: Failed validation of service as "
                               "type service (argument 0)"]
    assert peer.applied == [f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;web1;svc;0;fine".encode()]  # the rest applied
