"""``naemon-bridge demo``: the bridge on a working default with nothing else installed.

With Debian's ``nagios4`` on the PATH it starts a throwaway Nagios 4 with a sample passive host and service and
prints the engine's own log of what changed; without it, it makes its own command pipe and prints every line the
engine would receive.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bridge.config.model import Config, EngineConfig, LogConfig, ServerConfig, SpoolConfig, User
from bridge.core.values import EngineKind
from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary
from bridge.daemon.server import run, run_event_loop, setup_logging
from bridge.http.app import make_app
from bridge.intake import DIALECTS

DEMO_USER, DEMO_PASSWORD, DEMO_TOKEN = "demo", "demo", "demo-token"
DEMO_HOST, DEMO_SERVICE = "demo-host", "demo-service"


def say(text: str) -> None:
    print(text, flush=True)


_say = say


async def follow_pipe(path: Path, label: str = "engine pipe") -> None:
    """Stand in for the engine: read the FIFO and show each line."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # read-write, as the engine does, so writers never see ENXIO
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            try:
                buffer += os.read(fd, 65536)
            except BlockingIOError:
                continue
            *lines, rest = bytes(buffer).split(b"\n")
            buffer = bytearray(rest)
            for line in lines:
                _say(f"{label} <- {line.decode(errors='replace')}")
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def follow_log(path: Path, label: str = "nagios4") -> None:
    """Show what the real engine did with each line (its own log), as it happens."""
    interesting = ("EXTERNAL COMMAND", "SERVICE ALERT", "HOST ALERT", "Warning", "Error")
    position = 0
    while True:
        try:
            with path.open(errors="replace") as handle:
                handle.seek(position)
                chunk = handle.read()
                position = handle.tell()
        except FileNotFoundError:
            chunk = ""
        for line in chunk.splitlines():
            if any(word in line for word in interesting):
                _say(f"{label}: {line}")
        await asyncio.sleep(0.5)


def _banner(url: str, real_engine: bool) -> str:
    service_json = (f'{{"host_name":"{DEMO_HOST}","service_description":"{DEMO_SERVICE}",'
                    f'"status_code":"2","plugin_output":"Example issue has occurred"}}')
    alignak_json = (f'{{"livestate":{{"state":"up","output":"all good"}},"services":{{"s1":{{"name":'
                    f'"{DEMO_SERVICE}","livestate":{{"state":"ok","output":"back to normal","perf_data":"t=1"}}}}}}}}')
    engine = "a throwaway Nagios 4 (its log follows below)" if real_engine else \
        "a demo command pipe (each line the engine would get is shown below)"
    return f"""
naemon-bridge demo: listening on {url}, writing into {engine}.
Sample host '{DEMO_HOST}', service '{DEMO_SERVICE}'; user '{DEMO_USER}', password '{DEMO_PASSWORD}';
Alignak token '{DEMO_TOKEN}'. Try, in another terminal:

  curl -u {DEMO_USER}:{DEMO_PASSWORD} -H 'content-type: application/json' \\
    -d '{service_json}' \\
    {url}/api/command/PROCESS_SERVICE_CHECK_RESULT

  curl -u {DEMO_TOKEN}: -X PATCH -H 'content-type: application/json' \\
    -d '{alignak_json}' \\
    {url}/host/{DEMO_HOST}

The status page, in a browser: {url}/status (log in as '{DEMO_USER}').
Ctrl-C stops the demo and removes everything it made.
"""


def demo_config(directory: Path, listen: tuple[str, int], sandbox: NagiosSandbox | None) -> Config:
    users = (User(DEMO_USER, password=DEMO_PASSWORD), User("demo-reader", token=DEMO_TOKEN))
    if sandbox is not None:
        engine = EngineConfig(kind=EngineKind.NAGIOS, command_file=sandbox.command_file,
                              objects_cache=sandbox.objects_cache, status_file=sandbox.status_file)
    else:
        engine = EngineConfig(kind=EngineKind.NAGIOS, command_file=directory / "demo.cmd")
    return Config(source="<demo>", server=ServerConfig(host=listen[0], port=listen[1]), engine=engine,
                  spool=SpoolConfig(directory=directory / "spool"), users=users)


def run_demo(listen: tuple[str, int], use_nagios: bool = True) -> int:
    setup_logging(LogConfig())
    directory = Path(tempfile.mkdtemp(prefix="naemon-bridge-demo-"))
    sandbox: NagiosSandbox | None = None
    try:
        if use_nagios and nagios_binary():
            sandbox = NagiosSandbox(directory / "nagios", [SandboxHost(
                DEMO_HOST, (SandboxService(DEMO_SERVICE, variables={"OWNER": "nobody"}),),
                variables={"LOCATION": "lab"}, alias="Demo host")])
            sandbox.verify()
            sandbox.start()
        else:
            if use_nagios:
                _say("nagios4 is not on the PATH (apt-get install --no-install-recommends nagios4-core): "
                     "using a demo command pipe instead of a real engine")
            os.mkfifo(directory / "demo.cmd", 0o660)
        config = demo_config(directory, listen, sandbox)
        follower = follow_log(sandbox.log_file) if sandbox else follow_pipe(config.engine.command_file)

        async def main() -> None:
            task = asyncio.create_task(follower)
            try:
                await run(make_app(config, DIALECTS), config,
                          on_ready=lambda url: _say(_banner(url, sandbox is not None)))
            finally:
                task.cancel()

        run_event_loop(main())  # the loop serve runs on
        return 0
    except RuntimeError as exc:
        print(f"naemon-bridge demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if sandbox is not None:
            sandbox.stop()
        shutil.rmtree(directory, ignore_errors=True)
