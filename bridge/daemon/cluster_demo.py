"""``naemon-bridge demo --cluster``: a small working cluster on one machine — three ``nats-server`` nodes (a
JetStream cluster, three replicas), two engines (throwaway Nagios 4 when installed, else demo command pipes), a
sink beside each, and one edge listening where the demo listens. Ctrl-C removes everything it made."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.config.model import ClusterConfig, Config, EngineConfig, LogConfig, ServerConfig, SpoolConfig, User
from bridge.core.values import EngineKind
from bridge.daemon.cluster_roles import make_cluster_app
from bridge.daemon.demo import DEMO_PASSWORD, DEMO_USER, follow_log, follow_pipe, say
from bridge.daemon.nats_sandbox import NatsCluster, nats_binary
from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary
from bridge.daemon.server import run, run_event_loop, setup_logging
from bridge.http.keys import ENGINE_FILES
from bridge.intake import DIALECTS

ENGINES = {"eu": "web-eu", "us": "web-us"}  # engine -> its one sample host


def _banner(url: str, nats: NatsCluster, sinks: dict[str, str]) -> str:
    curls = "\n".join(
        f"  curl -u {DEMO_USER}:{DEMO_PASSWORD} -H 'content-type: application/json' \\\n"
        f"    -d '{{\"host_name\":\"{host}\",\"service_description\":\"http\",\"status_code\":\"2\","
        f"\"plugin_output\":\"down in {engine}\"}}' \\\n    {url}/api/command/PROCESS_SERVICE_CHECK_RESULT\n"
        for engine, host in ENGINES.items())
    sink_lines = "\n".join(f"  sink beside engine {engine}: {sink}/health" for engine, sink in sinks.items())
    return f"""
naemon-bridge demo --cluster: an edge listens on {url} (user '{DEMO_USER}', password '{DEMO_PASSWORD}').
JetStream: {', '.join(nats.urls)} (stream NAEMON_BRIDGE, 3 replicas).
{sink_lines}
Host '{ENGINES['eu']}' is in engine eu, '{ENGINES['us']}' in engine us; the edge routes each result by host.
Try, in another terminal:

{curls}
  curl {url}/health       # the edge: connected to which node, which engines it knows

Ctrl-C stops the cluster and removes everything it made.
"""


def _config(directory: Path, name: str, listen: tuple[str, int], engine: EngineConfig,
            cluster: ClusterConfig) -> Config:
    return Config(source=f"<demo {name}>", server=ServerConfig(host=listen[0], port=listen[1]), engine=engine,
                  spool=SpoolConfig(directory=directory / f"spool-{name}"), cluster=cluster,
                  users=(User(DEMO_USER, password=DEMO_PASSWORD),))


def run_cluster_demo(listen: tuple[str, int], use_nagios: bool = True) -> int:
    setup_logging(LogConfig())
    if nats_binary() is None:
        print("naemon-bridge demo --cluster: nats-server is not installed "
              "(apt-get install --no-install-recommends nats-server)", file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="naemon-bridge-cluster-demo-"))
    nats = NatsCluster(directory / "nats", 3)
    sandboxes: list[NagiosSandbox] = []
    try:
        nats.start()
        servers = tuple(nats.urls)
        engines: dict[str, EngineConfig] = {}
        followers: list[Coroutine[Any, Any, None]] = []
        for engine, host in ENGINES.items():
            if use_nagios and nagios_binary():
                sandbox = NagiosSandbox(directory / f"nagios-{engine}", [SandboxHost(host, (SandboxService("http"),))])
                sandbox.verify()
                sandbox.start()
                sandboxes.append(sandbox)
                engines[engine] = EngineConfig(kind=EngineKind.NAGIOS, command_file=sandbox.command_file,
                                               objects_cache=sandbox.objects_cache)
                followers.append(follow_log(sandbox.log_file, f"nagios4 {engine}"))
            else:
                pipe = directory / f"{engine}.cmd"
                os.mkfifo(pipe, 0o660)
                objects = directory / f"{engine}.objects.cache"  # what the sink publishes for the edge
                objects.write_text(f"define host {{\n\thost_name\t{host}\n\t}}\ndefine service {{\n\thost_name\t"
                                   f"{host}\n\tservice_description\thttp\n\t}}\n")
                engines[engine] = EngineConfig(kind=EngineKind.NAGIOS, command_file=pipe, objects_cache=objects)
                followers.append(follow_pipe(pipe, f"engine {engine} pipe"))
        edge = _config(directory, "edge", listen, EngineConfig(kind=EngineKind.NAGIOS),
                       ClusterConfig(role="edge", servers=servers, replicas=3))

        async def main() -> None:
            tasks = [asyncio.create_task(follower) for follower in followers]
            runners: list[web.AppRunner] = []
            sinks: dict[str, str] = {}
            try:
                for engine, engine_config in engines.items():
                    config = _config(directory, f"sink-{engine}", ("127.0.0.1", 0), engine_config,
                                     ClusterConfig(role="sink", servers=servers, replicas=3, engine=engine))
                    runner = web.AppRunner(make_cluster_app(config, DIALECTS), handle_signals=False)
                    await runner.setup()
                    site = web.TCPSite(runner, "127.0.0.1", 0)
                    await site.start()
                    runners.append(runner)
                    host, port = runner.addresses[0][:2]
                    sinks[engine] = f"http://{host}:{port}"
                edge_app = make_cluster_app(edge, DIALECTS)

                async def ready(url: str) -> None:
                    for _ in range(200):  # until both sinks published their objects (a few seconds at most)
                        if len(getattr(edge_app[ENGINE_FILES], "engines", {})) == len(ENGINES):
                            break
                        await asyncio.sleep(0.1)
                    say(_banner(url, nats, sinks))

                await run(edge_app, edge, on_ready=ready)
            finally:
                for task in tasks:
                    task.cancel()
                for runner in runners:
                    await runner.cleanup()

        run_event_loop(main())
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"naemon-bridge demo --cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        for sandbox in sandboxes:
            sandbox.stop()
        nats.stop()
        shutil.rmtree(directory, ignore_errors=True)
