"""``/status`` through aiohttp's test client with a real FIFO read as the engine would, and the in-memory recorder
it shows. (The page in a real browser: tests/test_e2e_status_browser.py.)"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.config.model import Config, EngineConfig, FreshnessConfig, SpoolConfig, User
from bridge.core.freshness import FreshnessRule
from bridge.core.permissions import Grants, NamePattern
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.http.keys import FRESHNESS
from bridge.http.recorder import RATE_WINDOW, PerSecond, Recorder
from bridge.http.status import line_objects
from bridge.intake import DIALECTS
from tests.conftest import FifoReader, collect

TOKEN = "tok-secret-123"
LIMITED = Grants(hosts=(NamePattern.parse("web*"),))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader, clock: Clock) -> TestClient:
    config = Config(
        engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo),
        spool=SpoolConfig(directory=tmp_path / "spool"),
        freshness=FreshnessConfig(rules=(FreshnessRule(threshold=60, host="*", service="*"),)),
        users=(User("alice", password="secret"), User("webops", password="w3b", grants=LIMITED),
               User("readers", token=TOKEN)),
    )
    return await aiohttp_client(make_app(config, DIALECTS, clock=clock))


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(user, password)}


ALICE = auth("alice", "secret")
HTML = {"Accept": "text/html,application/xhtml+xml"}


async def result(client: TestClient, host: str, service: str, status: int = 0, who: dict[str, str] = ALICE) -> int:
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=who,
                                 json={"host_name": host, "service_description": service, "status_code": status,
                                       "plugin_output": f"{host} {service}"})
    return response.status


async def page(client: TestClient, who: dict[str, str] = ALICE, query: str = "") -> str:
    response = await client.get(f"/status{query}", headers={**who, **HTML})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def test_without_credentials_a_browser_goes_to_the_login_form_and_a_script_gets_401(client: TestClient) -> None:
    response = await client.get("/status", headers=HTML, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/status/login"
    response = await client.get("/status")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Basic ")
    response = await client.get("/status", headers={**HTML, **auth("alice", "wrong")})
    assert response.status == 401 and "wrong user name, password or token" in await response.text()


async def test_the_page_shows_the_engine_the_last_line_and_throughput(client: TestClient, reader: FifoReader,
                                                                      clock: Clock) -> None:
    text = await page(client)
    assert 'id="status">ok<' in text and "reachable" in text and "command pipe" in text
    assert "none yet" in text
    # Without JavaScript it is the whole page, and it reloads itself; with it, its own script only (no CDN).
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in text
    assert re.findall(r'<script[^>]*src="([^"]+)"', text) == ["/status/static/status.js"]
    assert await result(client, "web1", "http") == 200
    await collect(reader, 1)
    clock.now += 2  # the second under way is not charted
    text = await page(client)
    assert re.search(r"PROCESS_SERVICE_CHECK_RESULT;web1;http;0;web1 http", text)
    assert "accepted · op5" in text and "delivered to the engine" in text
    assert re.search(r'<polyline fill="none" stroke="[^"]+" stroke-width="2" vector-effect="non-scaling-stroke" '
                     r'points="[^"]+"', text)
    # Its panels alone, for the script that swaps them in.
    response = await client.get("/status?part=panels", headers=ALICE)
    panels = await response.text()
    assert 'id="summary"' in panels and 'id="objects"' in panels and "<html" not in panels


async def test_refusals_are_listed_without_passwords_or_tokens(client: TestClient) -> None:
    assert await result(client, "web1", "http", who=auth("alice", "hunter2-wrong")) == 401
    assert await result(client, "web1", "http", who=auth(TOKEN + "x", "")) == 401
    assert await result(client, "db1", "disk", who=auth("webops", "w3b")) in (401, 403)  # op5 says 401
    response = await client.post("/api/command/PROCESS_SERVICE_CHECK_RESULT", headers=ALICE,
                                 json={"host_name": "web1", "service_description": "http", "status_code": 9})
    assert response.status == 400
    text = await page(client)
    assert "hunter2" not in text and TOKEN not in text
    assert re.search(r"<strong>2</strong> unauthenticated", text)
    assert re.search(r"<strong>1</strong> not_permitted", text) and re.search(r"<strong>1</strong> invalid", text)
    rows = re.findall(r"<tr><td>[^<]+</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", text)
    assert [(user, dialect, reason) for _, user, dialect, reason in rows] == [
        ("alice", "op5", "invalid"), ("webops", "op5", "not_permitted"), ("—", "op5", "unauthenticated"),
        ("alice", "op5", "unauthenticated")]
    assert rows[0][0] == "127.0.0.1"
    # A limited user sees only their own refused requests.
    mine = await page(client, auth("webops", "w3b"))
    assert re.findall(r"<td>(webops|alice|—)</td><td>op5</td>", mine) == ["webops"]


async def test_freshness_stale_first_filter_sort_and_a_limited_user_sees_only_its_hosts(
        client: TestClient, reader: FifoReader, clock: Clock) -> None:
    for host, service in [("web1", "http"), ("web2", "http"), ("db1", "disk")]:
        assert await result(client, host, service) == 200
    await collect(reader, 3)
    clock.now += 30
    assert await result(client, "web2", "http") == 200
    clock.now += 45  # web1 and db1 are 75 s old, web2 45 s: past the 60 s threshold, two are stale
    client.server.app[FRESHNESS].sweep()
    text = await page(client)
    assert re.search(r"<strong class=\"bad\">2</strong> stale · <strong class=\"good\">1</strong> fresh", text)
    hosts = re.findall(r'<tr class="(\w+)" data-host="([^"]+)"', text)
    assert hosts == [("stale", "db1"), ("stale", "web1"), ("fresh", "web2")]
    text = await page(client, query="?sort=-age")
    assert [h for _, h in re.findall(r'<tr class="(\w+)" data-host="([^"]+)"', text)] == ["web2", "db1", "web1"]
    text = await page(client, query="?q=WEB")
    assert [h for _, h in re.findall(r'<tr class="(\w+)" data-host="([^"]+)"', text)] == ["web1", "web2"]
    assert "2 match “WEB”" in text
    limited = await page(client, auth("webops", "w3b"))
    assert [h for _, h in re.findall(r'<tr class="(\w+)" data-host="([^"]+)"', limited)] == ["web1", "web2"]
    assert "db1" not in limited  # not even in the last line delivered
    assert "on an object outside your grants" in limited or "web2" in limited


async def test_a_wrong_parameter_is_named_and_the_static_files_are_served(client: TestClient) -> None:
    response = await client.get("/status?sort=age&filter=x", headers=ALICE)
    assert response.status == 400 and "&#39;filter&#39; is not a parameter of /status" in await response.text()
    response = await client.get("/status/static/status.js")
    assert response.status == 200 and response.content_type == "text/javascript"
    response = await client.get("/status/static/../app.py")
    assert response.status == 404


def test_line_objects() -> None:
    assert line_objects(b"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;out;with;semicolons") == ("h", "s")
    assert line_objects(b"[1] PROCESS_HOST_CHECK_RESULT;h;0;up") == ("h", None)
    assert line_objects(b"[1] DISABLE_NOTIFICATIONS") is None
    assert line_objects(b"garbage") is None


def test_per_second_rates_forget_what_is_older_than_the_window() -> None:
    series = PerSecond()
    series.add(1000.5, 3)
    series.add(1000.9, 2)
    series.add(1001.0, 10)
    assert series.total(1002.0) == 15
    rates = series.rates(1002.0, 90)
    assert len(rates) == 90 and rates[-1] == pytest.approx(1.5)  # 15 in the last 10 s
    assert series.total(1000.0 + RATE_WINDOW + 1) == 10  # second 1000 left the window
    series.add(1000.0 + RATE_WINDOW, 1)  # a lap later: counted once its second is over, second 1001 still in
    assert series.total(1000.0 + RATE_WINDOW + 1) == 11
    series.add(1000.0 + RATE_WINDOW + 1, 1)  # second 1000's slot, a lap later: its old count is gone
    assert series.total(1000.0 + RATE_WINDOW + 2) == 2


@example(adds=[(0, 1), (RATE_WINDOW, 1)], now=RATE_WINDOW)  # the second under way kept the oldest one
@given(st.lists(st.tuples(st.integers(0, 3 * RATE_WINDOW), st.integers(1, 100)), max_size=50),
       st.integers(0, 4 * RATE_WINDOW))
def test_per_second_total_is_the_sum_over_the_window(adds: list[tuple[int, int]], now: int) -> None:
    series = PerSecond()
    adds.sort()  # time only moves on
    for second, count in adds:
        series.add(second, count)
    last = adds[-1][0] if adds else 0
    now = max(now, last)
    expected = sum(c for s, c in adds if now - RATE_WINDOW <= s < now)
    assert series.total(now) == expected
    assert sum(series.rates(now, 90)) * RATE_WINDOW / 90 == pytest.approx(expected)


def test_refusals_by_reason_cover_the_last_hour_and_the_list_keeps_fifty() -> None:
    clock = Clock()
    recorder = Recorder(clock)
    recorder.note_refused("invalid", client="a", user="u", dialect="op5", message="x")
    clock.now += 1800
    for _ in range(60):
        recorder.note_refused("unauthenticated")
    assert recorder.refusals_by_reason() == {"unauthenticated": 60, "invalid": 1}
    clock.now += 1900
    assert recorder.refusals_by_reason() == {"unauthenticated": 60}
    assert len(list(recorder.refused())) == 50


def test_a_workers_refusals_and_accepted_counts_reach_the_hubs_recorder() -> None:
    from bridge.core.errors import NotAuthenticated
    from bridge.http.metrics import Metrics, WorkerMetrics, apply_pending
    worker, hub = WorkerMetrics(), Metrics()
    for _ in range(55):
        worker.refuse(NotAuthenticated("wrong"), client="10.0.0.1", user="alice", dialect="op5")
    worker.note_accepted("op5", 7)
    pending = worker.take_pending()
    assert pending is not None
    apply_pending(hub, pending)
    assert hub.recent.refusals_by_reason() == {"unauthenticated": 55}
    assert [(r.client, r.user, r.dialect) for r in hub.recent.refused()][:1] == [("10.0.0.1", "alice", "op5")]
    assert hub.recent.accepted["op5"].total(hub.recent.now() + 1) == 7
    # /metrics counts a worker's results in the hub
    assert hub.registry.get_sample_value("naemon_bridge_results_by_dialect_total", {"dialect": "op5"}) == 7


def csrf_of(form: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match, form
    return match.group(1)


async def test_the_login_form_sets_a_strict_httponly_session_cookie_and_logout_ends_it(client: TestClient) -> None:
    response = await client.get("/status/login")
    token = csrf_of(await response.text())
    response = await client.post("/status/login", data={"username": "alice", "password": "nope",
                                                         "csrf_token": token}, allow_redirects=False)
    text = await response.text()
    assert response.status == 403 and "Wrong user name or password." in text and 'value="alice"' in text
    assert "nope" not in text
    response = await client.post("/status/login", data={"username": "alice", "password": "secret",
                                                         "csrf_token": csrf_of(text)}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/status"
    cookie = next(h for h in response.headers.getall("Set-Cookie") if h.startswith("naemon_bridge_status="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/status" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS it is Secure (bridge.http.sessions)
    text = await page(client, {})
    assert 'action="/status/logout"' in text
    # The refusal list names the failed login, by its configured name, on this page's own "dialect".
    assert re.search(r"<td>alice</td><td>status</td><td>unauthenticated</td>", text)
    response = await client.post("/status/logout", data={"csrf_token": "forged"}, allow_redirects=False)
    assert response.status == 400
    response = await client.post("/status/logout", data={"csrf_token": csrf_of(text)}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/status/login"
    response = await client.get("/status", headers=HTML, allow_redirects=False)
    assert response.status == 303


async def test_a_login_without_its_csrf_token_or_with_a_token_as_user_name_is_refused(client: TestClient) -> None:
    response = await client.post("/status/login", data={"username": "alice", "password": "secret"},
                                 allow_redirects=False)
    assert response.status == 400 and "The form had expired" in await response.text()
    form = await (await client.get("/status/login")).text()
    response = await client.post("/status/login", data={"username": TOKEN, "password": "",
                                                         "csrf_token": csrf_of(form)}, allow_redirects=False)
    text = await response.text()
    assert response.status == 400 and TOKEN not in text
    response = await client.post("/status/login", data={"username": "alice", "password": "secret",
                                                         "csrf_token": "other"}, allow_redirects=False)
    assert response.status == 400


async def test_a_cluster_roles_status_has_its_panel(aiohttp_client, fifo: Path, tmp_path: Path,
                                                    reader: FifoReader) -> None:
    from bridge.http.keys import CLUSTER
    config = Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo),
                    spool=SpoolConfig(directory=tmp_path / "spool"), users=(User("alice", password="secret"),))
    app = make_app(config, DIALECTS)
    app[CLUSTER] = lambda: {"role": "sink", "engine": "east", "stream_lag": 42, "pending_acks": 3,
                            "connected": True, "server": "nats://127.0.0.1:4222", "problem": None,
                            "stream": "RESULTS"}
    client = await aiohttp_client(app)
    text = await page(client)
    assert 'id="cluster-role">sink<' in text and "connected to nats://127.0.0.1:4222" in text
    assert 'id="cluster-lag">42 messages, 3 awaiting acknowledgement<' in text
    assert "<dt>engine</dt><dd>east</dd>" in text
    # Without a cluster there is no such panel.
    alone = dataclasses.replace(config, spool=SpoolConfig(directory=tmp_path / "spool-alone"))
    assert 'id="cluster"' not in await page(await aiohttp_client(make_app(alone, DIALECTS)))


async def test_a_session_reads_the_users_grants_as_the_config_is_now(client: TestClient) -> None:
    """A reload that limits a logged-in user limits their open page at once; one that removes them logs them
    out."""
    from bridge.http.keys import CONFIG
    form = await (await client.get("/status/login")).text()
    response = await client.post("/status/login", data={"username": "alice", "password": "secret",
                                                         "csrf_token": csrf_of(form)}, allow_redirects=False)
    assert response.status == 303
    assert "limited to its hosts" not in await page(client, {})
    live = client.server.app[CONFIG]
    limited = User("alice", password="secret", grants=LIMITED)
    live.current = dataclasses.replace(live.current, users=(limited,))
    assert "limited to its hosts" in await page(client, {})
    live.current = dataclasses.replace(live.current, users=())
    response = await client.get("/status", headers=HTML, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/status/login")


async def test_an_alignak_refusal_answered_200_is_listed_with_its_session_user(client: TestClient) -> None:
    response = await client.post("/ws/login", json={"username": "alice", "password": "secret"})
    assert response.status == 200 and (await response.json())["_status"] == "OK"
    response = await client.post("/command", json={"command": "NO_SUCH_COMMAND"})  # the /ws/login cookie
    assert response.status == 200 and (await response.json())["_status"] == "ERR"
    text = await page(client)
    assert re.search(r"<td>127\.0\.0\.1</td><td>alice</td><td>alignak</td><td>unknown_command</td>", text), text
