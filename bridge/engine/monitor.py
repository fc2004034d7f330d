"""The freshness monitor: the task that sweeps the freshness table, follows the engine's objects, submits stale
results through the delivery task, and keeps the table on disk across restarts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from bridge.config.model import EngineConfig, FreshnessConfig
from bridge.core.command_table import COMMANDS
from bridge.core.commands import engine_lines
from bridge.core.errors import EngineUnavailable
from bridge.core.freshness import FreshnessTable, StaleEvent, human_duration
from bridge.core.values import Command
from bridge.engine.delivery import Delivery
from bridge.engine.files import EngineFiles, keep_out_of_full_collections

log = logging.getLogger("naemon_bridge.freshness")

SAVE_INTERVAL = 30.0  # seconds between saves of the table (and once more at shutdown)
TABLE_FILE = "freshness.json"
SWEEP_CHUNK = 2000  # due objects handled before the loop serves requests again (~10 ms of work)


def stale_command(event: StaleEvent, config: FreshnessConfig, now: int) -> Command:
    host, service = event.key
    output = f"No passive result for {human_duration(event.age)} (threshold {human_duration(event.threshold)})"
    if service is None:
        return Command(COMMANDS["PROCESS_HOST_CHECK_RESULT"], (host, str(int(config.stale_host_state)), output), now)
    return Command(COMMANDS["PROCESS_SERVICE_CHECK_RESULT"],
                   (host, service, str(int(config.stale_service_state)), output), now)


class FreshnessMonitor:
    def __init__(self, table: FreshnessTable, config: FreshnessConfig, files: EngineFiles, delivery: Delivery,
                 engine: EngineConfig, directory: Path) -> None:
        self.table = table
        self.config = config
        self.files = files
        self.delivery = delivery
        self.engine = engine
        self.path = directory / TABLE_FILE
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._seen_objects: object = None
        self._seen_globals: tuple[str | None, str | None] | None = None

    def update(self, config: FreshnessConfig, engine: EngineConfig) -> None:
        """New freshness settings (a reload): the next sweep recomputes every threshold."""
        self.config, self.engine = config, engine
        self.table.configure(rules=config.rules, default_threshold=config.default_threshold,
                             submit_stale=config.submit_stale, interval_length=config.interval_length)
        self._seen_objects = self._seen_globals = None

    async def start(self) -> None:
        try:
            data = await asyncio.to_thread(lambda: json.loads(self.path.read_text()))
            self.table.load(data)
            log.info("freshness: %d objects' last-seen times restored from %s", len(self.table), self.path)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            log.error("freshness: cannot read %s (%s); last-seen times start from now", self.path, exc)
        await self._follow_engine()
        self._task = asyncio.create_task(self._run(), name="naemon-bridge freshness")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None
        await self.save()

    async def _follow_engine(self) -> None:
        """Recompute thresholds when the engine's objects or globals change (new objects cache, status file)."""
        known, status = await self.files.objects(), await self.files.status()
        program = status.program if status is not None else {}
        globals_ = (program.get("check_service_freshness"), program.get("check_host_freshness"))
        # The objects cache is parsed anew only when it changes, so identity tells a change cheaply.
        if known is not self._seen_objects or globals_ != self._seen_globals:
            self._seen_objects, self._seen_globals = known, globals_
            self.table.apply_engine(known, status)
            keep_out_of_full_collections()  # the table now tracks every object the engine has

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_save = loop.time() + SAVE_INTERVAL
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.sweep_interval)
            except TimeoutError:
                pass
            await self._follow_engine()
            while True:  # in chunks: requests are served between them, however many objects fall due at once
                events = self.table.sweep(limit=SWEEP_CHUNK)
                if events:
                    await self._submit(events)
                if not self.table.due():
                    break
                await asyncio.sleep(0)
            if loop.time() >= next_save:
                next_save = loop.time() + SAVE_INTERVAL
                await self.save()

    async def _submit(self, events: list[StaleEvent]) -> None:
        now = int(self.table.now())
        commands = [stale_command(event, self.config, now) for event in events]
        for event in events:
            log.warning("freshness: %s%s is stale: no passive result for %s (threshold %s); submitting %s",
                        event.key[0], f"/{event.key[1]}" if event.key[1] else "", human_duration(event.age),
                        human_duration(event.threshold), "a stale result")
        try:
            await self.delivery.submit(engine_lines(commands, self.engine.kind,
                                                    query_handler=self.engine.query_socket is not None))
        except EngineUnavailable as exc:
            log.error("freshness: could not submit %d stale results: %s", len(commands), exc)

    async def save(self) -> None:
        data = json.dumps(self.table.dump())

        def write() -> None:
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            log.error("freshness: cannot save %s: %s", self.path, exc)
