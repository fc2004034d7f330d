"""Fixtures: a throwaway real Nagios 4, and the bridge run as a subprocess the way a user runs it."""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.config.model import Config, EngineConfig, SpoolConfig, User
from bridge.core.values import EngineKind
from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary

ROOT = Path(__file__).resolve().parent.parent

# Objects of the shared engine. Each test uses its own hosts so tests never read each other's results.
E2E_HOSTS = [
    SandboxHost("seed-host", (SandboxService("Example service"),)),
    SandboxHost("passive-01", (SandboxService("dev_BarcodeReader", variables={"OWNER": "ops"}),
                               SandboxService("dev_Printer"), SandboxService("off", passive_checks_enabled=False)),
                variables={"LOCATION": "hall", "RACK": "1"}, alias="Passive host 1", notes="seed host"),
    SandboxHost("op5-host", (SandboxService("disk"), SandboxService("win"), SandboxService("multi"))),
    SandboxHost("bad-host", (SandboxService("svc"),)),
    SandboxHost("sentinel", (SandboxService("mark"),)),
    SandboxHost("flags-host", (SandboxService("svc"),)),
    SandboxHost("cmd-host", (SandboxService("svc", variables={"OWNER": "ops"}),)),
    SandboxHost("op5-fidelity", (SandboxService("plain"), SandboxService("sticky"), SandboxService("perf"))),
    SandboxHost("client-host", (SandboxService("backup"),)),
    SandboxHost("send-host", (SandboxService("svc"),)),
    SandboxHost("db1", (SandboxService("Backup nightly"),)),  # the README's client examples
    # tests/test_e2e_nsca.py: a service per encryption method and case
    SandboxHost("nsca-host", tuple(SandboxService(name) for name in (
        "m0", "m1", "m2", "m3", "m4", "m8", "m14", "legacy-1", "legacy-14", "built-legacy", "after", "wrong",
        "block"))),
    SandboxHost("reload-host", (SandboxService("svc"),)),
    SandboxHost("workers-host", tuple(SandboxService(f"svc-{n}") for n in range(8))),
    SandboxHost("fresh-host", (SandboxService("svc"),
                               SandboxService("engine-svc", check_freshness=True, freshness_threshold=3))),
    SandboxHost("nrdp-host", (SandboxService("sh"), SandboxService("py"), SandboxService("json"),
                              SandboxService("bad"))),
    SandboxHost("icinga-host", (SandboxService("a"), SandboxService("b"), SandboxService("ttl"))),
    # The Alignak seed document's host, with the custom variables it sets already defined.
    SandboxHost("test_host", (SandboxService("test_service"),),
                variables={"TEST1": "a", "TEST2": "0", "TEST3": "0"}, alias="My host..."),
    *[  # alignak-module-ws's own test objects (tests/test_e2e_alignak.py), one host per upstream test
        SandboxHost(name, (SandboxService("test_ok_0"), SandboxService("test_ok_1"),
                           SandboxService("test_ok_2")), alias="up_0")
        for name in ("test_host_0", "ws_feedback_0", "ws_flags_0", "ws_partial_0", "ws_defaults_0")],
    SandboxHost("ws_vars_0", (SandboxService("test_ok_0", variables={"TEST1": "0"}),),
                variables={"TEST1": "0", "TEST2": "0", "TEST3": "0", "LIST": "[]", "DICT": "{}"}),
    # tools/host_services_2.json of alignak-module-ws, with the custom variables it sets
    SandboxHost("master-0001", (SandboxService("dev_Network"), SandboxService("soft_cwrsync"),
                                SandboxService("soft_Inventory")),
                variables={name.upper(): "none" for name in ("Serial", "Model", "Type", "Client", "Group", "Site",
                                                            "Location", "Phase", "Status", "Packages")}),
]


def require_nagios() -> None:
    if nagios_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nagios4 is not installed: .ci/run must install nagios4-core")
        pytest.skip("nagios4 (Debian's nagios4-core) is not installed")


OUTAGE_HOSTS = [SandboxHost("outage-host", (SandboxService("svc"),))]


@pytest.fixture
def stopped_engine(tmp_path: Path) -> Iterator[NagiosSandbox]:
    """A Nagios 4 of the test's own, configured but not started: the engine is down until the test starts it."""
    require_nagios()
    sandbox = NagiosSandbox(tmp_path / "nagios", OUTAGE_HOSTS)
    sandbox.verify()
    yield sandbox
    sandbox.stop()


TEST_USER = '[[users]]\nname = "u"\npassword = "p"\n'


def bridge_toml(engine: NagiosSandbox, folder: Path, *, known_objects: bool = False, server: str = "",
                extra: str = "", users: str = TEST_USER) -> str:
    """A config for a bridge in front of ``engine``: a free port, the spool in ``folder``; ``known_objects`` adds
    the engine's objects cache and status file; ``server`` goes into [server], ``extra`` before the users."""
    files = f'objects_cache = "{engine.objects_cache}"\nstatus_file = "{engine.status_file}"\n' if known_objects \
        else ""
    return (f'[server]\nlisten = "127.0.0.1:0"\n{server}\n[engine]\nkind = "nagios"\n'
            f'command_file = "{engine.command_file}"\n{files}[spool]\ndirectory = "{folder / "spool"}"\n'
            f"{extra}\n{users}")


def bridge_config(path: Path, engine: NagiosSandbox, **options: Any) -> Path:
    """``bridge_toml`` written to ``path``, spooling beside it."""
    path.write_text(bridge_toml(engine, path.parent, **options))
    return path


@pytest.fixture(scope="session")
def nagios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NagiosSandbox]:
    """One real Nagios 4 for the session (Debian's nagios4-core)."""
    require_nagios()
    sandbox = NagiosSandbox(tmp_path_factory.mktemp("nagios"), E2E_HOSTS)
    sandbox.verify()
    sandbox.start()
    yield sandbox
    sandbox.stop()


class FifoReader:
    """Stands in for the engine: holds the FIFO open for reading and collects lines."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # as the engine opens it
        self.buffer = b""

    def read_lines(self) -> list[bytes]:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\n")
        return complete

    def close(self) -> None:
        os.close(self.fd)


async def collect(reader: FifoReader, count: int, timeout: float = 10.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < count:
        got += reader.read_lines()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(got)} of {count} lines arrived")
        await asyncio.sleep(0.01)
    return got


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A real FIFO, as the engine's command file."""
    path = tmp_path / "engine.cmd"
    os.mkfifo(path, 0o660)
    return path

@pytest.fixture
def reader(fifo: Path) -> Iterator[FifoReader]:
    """The engine's side of ``fifo``, open for the whole test."""
    engine = FifoReader(fifo)
    yield engine
    engine.close()


def fifo_config(fifo: Path, folder: Path, objects: str, users: tuple[User, ...], **sections: Any) -> Config:
    """An in-process app's config: a Nagios 4 on ``fifo`` whose objects cache (in ``folder``) holds ``objects``,
    the spool in ``folder``; ``sections``: the other parts of ``Config``."""
    objects_cache = folder / "objects.cache"
    objects_cache.write_text(objects)
    return Config(engine=EngineConfig(kind=EngineKind.NAGIOS, command_file=fifo, objects_cache=objects_cache),
                  spool=SpoolConfig(directory=folder / "spool"), users=users, **sections)


# Alignak answers with every line and every property the bridge has (alignak-module-ws's defaults give neither)
ALIGNAK_VERBOSE = ('[alignak]\ngive_result = true\ngive_feedback = 2\n'
                   'feedback_host = "alias,notes,active_checks_enabled,passive_checks_enabled,check_freshness,'
                   'freshness_threshold,freshness_state,check_interval,retry_interval,max_check_attempts"\n'
                   'feedback_service = "alias,notes,active_checks_enabled,passive_checks_enabled,check_freshness,'
                   'freshness_threshold,freshness_state,check_interval,retry_interval,max_check_attempts"\n')
USER = ("status_update", "mysecret")
TOKEN = "1484558366922-bcf7ccf1-7c7a-4b4b-9f7e-2d1b1b0e2e51"
ALIGNAK = (TOKEN, "")


@dataclass
class BridgeProcess:
    """``naemon-bridge serve --config PATH`` as a subprocess; ``url`` is known once it listens."""

    config_path: Path
    process: subprocess.Popen[str]
    url: str = ""
    log: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def start_reading(self) -> None:
        def pump() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                self._lines.put(line)
            self._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_listening(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError("naemon-bridge exited before listening:\n" + "".join(self.log))
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                return self.url
        raise AssertionError("naemon-bridge did not start listening:\n" + "".join(self.log))

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return "".join(self.log)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def start_bridge(config_path: Path) -> BridgeProcess:
    command = [sys.executable, "-m", "bridge", "serve", "--config", str(config_path)]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    bridge = BridgeProcess(config_path, process)
    bridge.start_reading()
    return bridge


@pytest.fixture
def run_bridge() -> Iterator:
    """Start bridges from config files; every one started is stopped at the end of the test."""
    started: list[BridgeProcess] = []

    def run(config_path: Path, *, wait: bool = True) -> BridgeProcess:
        bridge = start_bridge(config_path)
        started.append(bridge)
        if wait:
            bridge.wait_listening()
        return bridge

    yield run
    for bridge in started:
        bridge.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def bridge(nagios: NagiosSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    directory = tmp_path_factory.mktemp("bridge")
    seed_users = f'[[users]]\nname = "{USER[0]}"\npassword = "{USER[1]}"\n' \
                 f'[[users]]\ntoken = "{TOKEN}"\nname = "barcode-readers"\n'
    config = bridge_config(directory / "naemon-bridge.toml", nagios, known_objects=True, users=seed_users,
                           extra=ALIGNAK_VERBOSE)
    process = start_bridge(config)
    process.wait_listening()
    yield process
    assert process.stop() == 0, process.log_text()
