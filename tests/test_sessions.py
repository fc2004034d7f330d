"""The dialect-neutral session store and its cookie (bridge.http.sessions)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from bridge.http.sessions import SessionStore, clear_session_cookie, session_token, set_session_cookie


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_created_session_is_found_by_its_token_only() -> None:
    store = SessionStore(clock=Clock())
    session = store.create("alice")
    assert len(session.token) >= 40
    found = store.lookup(session.token)
    assert found is not None and found.user == "alice" and found.token == ""  # lookups never hand the token out
    assert store.lookup(session.token + "x") is None
    assert store.lookup("") is None and store.lookup(None) is None
    assert store.create("alice").token != session.token


def test_the_store_keeps_no_token() -> None:
    store = SessionStore(clock=Clock())
    token = store.create("alice").token
    assert all(token.encode() not in key and token not in repr(value) for key, value in store._sessions.items())


def test_idle_expiry_and_use_keeps_it_open() -> None:
    clock = Clock()
    store = SessionStore(idle=10, lifetime=100, clock=clock)
    token = store.create("alice").token
    for _ in range(5):
        clock.now += 9
        assert store.lookup(token) is not None  # each use restarts the idle time
    clock.now += 10
    assert store.lookup(token) is None
    assert len(store) == 0


def test_absolute_expiry_however_busy() -> None:
    clock = Clock()
    store = SessionStore(idle=10, lifetime=30, clock=clock)
    token = store.create("alice").token
    for _ in range(3):
        clock.now += 9
        assert store.lookup(token) is not None
    clock.now += 3  # 30 s after creation, though used 3 s ago
    assert store.lookup(token) is None


def test_revocation() -> None:
    store = SessionStore(clock=Clock())
    first, second, other = store.create("alice"), store.create("alice"), store.create("bob")
    assert store.revoke(first.token) is True
    assert store.revoke(first.token) is False and store.revoke(None) is False
    assert store.lookup(first.token) is None and store.lookup(second.token) is not None
    assert store.revoke_user("alice") == 1
    assert store.lookup(second.token) is None and store.lookup(other.token) is not None
    assert store.retain_users({"carol"}) == 1
    assert store.lookup(other.token) is None


def test_the_least_recently_used_session_ends_at_the_limit() -> None:
    clock = Clock()
    store = SessionStore(limit=2, clock=clock)
    a, b = store.create("a"), store.create("b")
    clock.now += 1
    store.lookup(a.token)  # now b is the least recently used
    c = store.create("c")
    assert len(store) == 2
    assert store.lookup(b.token) is None
    assert store.lookup(a.token) is not None and store.lookup(c.token) is not None


def test_expired_sessions_are_swept_on_create() -> None:
    clock = Clock()
    store = SessionStore(idle=10, clock=clock)
    for name in "abc":
        store.create(name)
    clock.now += 11
    store.create("d")
    assert len(store) == 1


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        SessionStore(idle=0)
    with pytest.raises(ValueError):
        SessionStore(limit=0)


@given(st.text())
def test_no_string_finds_a_session_but_its_token(guess: str) -> None:
    store = SessionStore(clock=Clock())
    token = store.create("alice").token
    assert (store.lookup(guess) is not None) == (guess == token)


async def test_the_cookie_is_httponly_samesite_strict_and_read_back(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    async def login(request: web.Request) -> web.Response:
        response = web.json_response({})
        set_session_cookie(response, request, "naemon-bridge", "TOKEN", path="/ws")
        return response

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"token": session_token(request, "naemon-bridge")})

    async def logout(request: web.Request) -> web.Response:
        response = web.json_response({})
        clear_session_cookie(response, request, "naemon-bridge", path="/ws")
        return response

    app = web.Application()
    app.router.add_post("/ws/login", login)
    app.router.add_get("/ws/whoami", whoami)
    app.router.add_get("/ws/logout", logout)
    client = await aiohttp_client(app)
    response = await client.post("/ws/login")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/ws" in header
    assert "Secure" not in header  # plain HTTP here; under TLS request.secure adds it
    assert (await (await client.get("/ws/whoami")).json()) == {"token": "TOKEN"}
    response = await client.get("/ws/logout")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert (await (await client.get("/ws/whoami")).json()) == {"token": None}


async def test_the_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def login(request: web.Request) -> web.Response:
        response = web.json_response({})
        set_session_cookie(response, request, "s", "TOKEN")
        return response

    app = web.Application()
    app.router.add_post("/login", login)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as client:
            async with client.post(f"https://127.0.0.1:{port}/login", ssl=False) as response:
                assert "Secure" in response.headers["Set-Cookie"]
    finally:
        await runner.cleanup()
