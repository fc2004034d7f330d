"""Logins under attack, through aiohttp's test client with a real FIFO: attempts count when they start, per
user name and per address; password hashes are checked in a bounded pool of their own, and a user name that
does not exist costs a hash check like one that does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import argon2
import bcrypt
import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from bridge.config.model import AuthConfig, Config, EngineConfig, SpoolConfig, User
from bridge.core.values import EngineKind
from bridge.http.app import make_app
from bridge.http.credentials import dummy_template, hash_like, hash_password
from bridge.intake import DIALECTS
from tests.conftest import FifoReader

NOW = 1_700_000_000
USERS = (User("ops", password="x"), User("other", password="y"), User("hashed", password_hash=hash_password("pw")))
RESULT = {"host_name": "web1", "status_code": 0}


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(user, password)}


def bridge_app(fifo: Path, tmp_path: Path, limits: AuthConfig):
    config = Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo),
                    spool=SpoolConfig(directory=tmp_path / "spool"), users=USERS, auth=limits)
    return make_app(config, DIALECTS, clock=lambda: NOW)


@pytest.fixture
async def client(aiohttp_client, fifo: Path, tmp_path: Path, reader: FifoReader) -> TestClient:
    return await aiohttp_client(bridge_app(fifo, tmp_path, AuthConfig(max_failures=3, max_address_failures=6,
                                                                      failure_window=60)))


async def statuses(client: TestClient, headers: list[dict[str, str]]) -> list[int]:
    async def one(header: dict[str, str]) -> int:
        async with client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=header, json=RESULT) as response:
            return response.status

    return list(await asyncio.gather(*(one(h) for h in headers)))


@pytest.mark.parametrize("same_password", [False, True], ids=["different-passwords", "one-password"])
async def test_concurrent_wrong_passwords_count_from_the_start(client: TestClient, reader: FifoReader,
                                                               same_password: bool) -> None:
    """30 wrong passwords sent at once for a user with an argon2 hash: only max_failures of them are checked and
    answered 401; the rest are refused with 429 (before: all 30 were checked and all got 401)."""
    guesses = [auth("hashed", "wrong" if same_password else f"wrong-{n}") for n in range(30)]
    answers = await statuses(client, guesses)
    assert sorted(answers) == [401] * 3 + [429] * 27, answers
    assert (await statuses(client, [auth("hashed", "pw")])) == [429]  # the right password waits too now
    assert reader.read_lines() == []


async def test_one_bad_client_does_not_lock_out_the_other_users_of_its_address(client: TestClient,
                                                                               reader: FifoReader) -> None:
    """Per (address, user name) max_failures, per address max_address_failures: a client guessing one user's
    password locks out that user name from the address, not the others, until the address as a whole has failed
    too often."""
    assert await statuses(client, [auth("ops", "wrong")] * 3) == [401] * 3
    assert await statuses(client, [auth("ops", "x"), auth("ops$LDAP", "x")]) == [429, 429]  # one user, any suffix
    assert await statuses(client, [auth("other", "y")]) == [200]  # the address's other users still get in
    assert await statuses(client, [auth("nobody", "1"), auth("nobody-2", "1"), auth("nobody-3", "1")]) == [401] * 3
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=auth("other", "y"), json=RESULT)
    assert response.status == 429  # 6 failures from the address: now everyone there waits
    assert "from 127.0.0.1" in (await response.json())["full_error"]
    assert len(reader.read_lines()) == 1


async def test_password_checks_do_not_hold_up_the_spool(aiohttp_client, fifo: Path, tmp_path: Path) -> None:
    """The engine is away (no reader: results go to the spool, written in the default thread pool). During a burst
    of wrong argon2 passwords, a good result is spooled and answered at once: hash checks run in their own
    threads. Before, the spool's write queued behind the burst's hash checks (a result took 5.1 s)."""
    client = await aiohttp_client(bridge_app(fifo, tmp_path, AuthConfig(max_failures=1000,
                                                                        max_address_failures=1000)))
    assert await statuses(client, [auth("ops", "x")]) == [200]  # spooled; the login is cached from now on

    async def guess(n: int) -> int:
        return (await statuses(client, [auth("hashed", f"wrong-{n}")]))[0]

    burst = [asyncio.create_task(guess(n)) for n in range(16)]
    await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)  # the burst is being checked
    assert await statuses(client, [auth("ops", "x")]) == [200]
    answered = sum(task.done() for task in burst)
    assert answered < len(burst) // 2, f"the result waited for {answered} of {len(burst)} password checks"
    assert sorted(set(await asyncio.gather(*burst))) == [401]


async def test_unknown_user_names_cost_a_hash_check_and_a_flood_is_bounded(aiohttp_client, fifo: Path,
                                                                            tmp_path: Path,
                                                                            reader: FifoReader) -> None:
    """Logins for names that do not exist wait for a hash check like logins for one that does (so timing does
    not tell which names exist): a flood of either fills the bounded queue of hash checks, and what does not fit
    is refused with 429 at once instead of queueing without end. Before, an unknown name was answered at once."""
    limits = AuthConfig(max_failures=1000, max_address_failures=1000, hash_threads=1, hash_queue=4)
    client = await aiohttp_client(bridge_app(fifo, tmp_path, limits))
    flood = 30
    for headers in ([auth(f"nobody-{n}", "pw") for n in range(flood)], [auth("hashed", f"wrong-{n}")
                                                                        for n in range(flood)]):
        answers = await statuses(client, headers)
        assert set(answers) == {401, 429}, answers
        assert answers.count(401) >= limits.hash_threads + limits.hash_queue
    response = await client.post("/api/command/PROCESS_HOST_CHECK_RESULT", headers=auth("hashed", "pw"),
                                 json=RESULT)
    assert response.status == 200
    assert len(reader.read_lines()) == 1


def test_the_dummy_hash_is_of_the_configured_kind_and_cost() -> None:
    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("a")
    rounds_5 = bcrypt.hashpw(b"b", bcrypt.gensalt(5)).decode()
    users = [User("a", password_hash=cheap), User("b", password_hash=rounds_5), User("c", password="p"),
             User("d", password_hash=argon2.PasswordHasher().hash("d"))]
    template = dummy_template(users)
    assert template == cheap  # argon2, the most common kind: the first such hash
    assert argon2.extract_parameters(hash_like(template, "x")) == argon2.extract_parameters(cheap)
    assert hash_like(rounds_5, "x").startswith("$2b$05$")
    assert dummy_template([User("c", password="p"), User("t", token="t")]) is None
