"""What the engine knows: its objects (``objects.cache``) and their current status (``status.dat``).

The parsers are pure functions of the file's text. ``WatchedFile`` re-reads a file when it changes (the engine
rewrites ``objects.cache`` at every start and ``status.dat`` every ``status_update_interval``), parsing in a
thread so a large file never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import aiofiles

from bridge.command_table import ArgType
from bridge.commands import OBJECT_TYPES, parameters
from bridge.errors import UnknownObject
from bridge.values import Command

log = logging.getLogger("naemon_bridge.objects")

_GROUP_KEYS = {"hostgroup": ArgType.HOSTGROUP, "servicegroup": ArgType.SERVICEGROUP, "contact": ArgType.CONTACT,
               "contactgroup": ArgType.CONTACTGROUP, "timeperiod": ArgType.TIMEPERIOD}


def _blocks(text: str, separator: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(kind, attributes)`` for each ``kind {`` … ``}`` block (``define host {`` in objects.cache,
    ``hoststatus {`` in status.dat); a line's key and value split at the first ``separator``."""
    kind: str | None = None
    attributes: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if kind is None:
            if line.rstrip().endswith("{"):
                kind = line.rstrip()[:-1].strip().removeprefix("define ").strip()
                attributes = {}
        elif line.rstrip() == "}":
            yield kind, attributes
            kind = None
        else:
            key, _, value = line.partition(separator)
            attributes[key.strip()] = value.strip() if separator == "\t" else value


def _flag(value: str | None) -> bool:
    return value == "1"


def _number(value: str | None, default: float = 0) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A host's or service's configuration, as far as the bridge uses it."""

    alias: str
    notes: str
    active_checks_enabled: bool
    passive_checks_enabled: bool
    check_freshness: bool
    freshness_threshold: int
    check_interval: float
    retry_interval: float
    max_check_attempts: int
    variables: frozenset[str]  # custom variable names, upper case, without the leading underscore

    @classmethod
    def from_attributes(cls, attrs: dict[str, str], alias_key: str) -> ObjectInfo:
        return cls(
            alias=attrs.get(alias_key, ""),
            notes=attrs.get("notes", ""),
            active_checks_enabled=_flag(attrs.get("active_checks_enabled")),
            passive_checks_enabled=_flag(attrs.get("passive_checks_enabled")),
            check_freshness=_flag(attrs.get("check_freshness")),
            freshness_threshold=int(_number(attrs.get("freshness_threshold"))),
            check_interval=_number(attrs.get("check_interval")),
            retry_interval=_number(attrs.get("retry_interval")),
            max_check_attempts=int(_number(attrs.get("max_check_attempts"), 1)),
            variables=frozenset(k[1:].upper() for k in attrs if k.startswith("_")),
        )


@dataclass(frozen=True, slots=True)
class KnownObjects:
    """The engine's hosts, services and named groups, from its objects cache."""

    hosts: dict[str, ObjectInfo]
    services: dict[tuple[str, str], ObjectInfo]
    names: dict[ArgType, frozenset[str]]

    def check(self, command: Command) -> None:
        """Refuse a command naming an object the engine does not have, before anything is written."""
        problem = self.unknown(command)
        if problem is not None:
            raise problem

    def unknown(self, command: Command) -> UnknownObject | None:
        """The first object the command names that the engine does not have, or None."""
        host: str | None = None
        for param, value in zip(parameters(command.spec), command.fields, strict=True):
            if not value:
                continue
            if param.type is ArgType.HOST:
                host = value
                if value not in self.hosts:
                    return UnknownObject(param.name, f"the engine has no host '{value}'")
            elif param.type is ArgType.SERVICE:
                if (host or "", value) not in self.services:
                    return UnknownObject(param.name, f"the engine has no service '{value}' on host '{host}'")
            elif param.type in OBJECT_TYPES and value not in self.names.get(param.type, frozenset()):
                return UnknownObject(param.name, f"the engine has no {param.type.value} '{value}'")
        return None


def parse_objects_cache(text: str) -> KnownObjects:
    hosts: dict[str, ObjectInfo] = {}
    services: dict[tuple[str, str], ObjectInfo] = {}
    names: dict[ArgType, set[str]] = {kind: set() for kind in _GROUP_KEYS.values()}
    for kind, attrs in _blocks(text, "\t"):
        if kind == "host" and "host_name" in attrs:
            hosts[attrs["host_name"]] = ObjectInfo.from_attributes(attrs, "alias")
        elif kind == "service" and "host_name" in attrs and "service_description" in attrs:
            key = (attrs["host_name"], attrs["service_description"])
            services[key] = ObjectInfo.from_attributes(attrs, "display_name")
        elif kind in _GROUP_KEYS and f"{kind}_name" in attrs:
            names[_GROUP_KEYS[kind]].add(attrs[f"{kind}_name"])
    return KnownObjects(hosts, services, {k: frozenset(v) for k, v in names.items()})


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """An object's run-time state from status.dat (flags may differ from the config after commands)."""

    current_state: int
    last_check: int
    has_been_checked: bool
    active_checks_enabled: bool
    passive_checks_enabled: bool
    variables: dict[str, str]  # upper-case name without underscore -> value

    @classmethod
    def from_attributes(cls, attrs: dict[str, str]) -> ObjectStatus:
        return cls(
            current_state=int(_number(attrs.get("current_state"))),
            last_check=int(_number(attrs.get("last_check"))),
            has_been_checked=_flag(attrs.get("has_been_checked")),
            active_checks_enabled=_flag(attrs.get("active_checks_enabled")),
            passive_checks_enabled=_flag(attrs.get("passive_checks_enabled")),
            # status.dat writes a custom variable as "_NAME=<modified flag>;<value>"
            variables={k[1:].upper(): v.partition(";")[2] for k, v in attrs.items() if k.startswith("_")},
        )


@dataclass(frozen=True, slots=True)
class EngineStatus:
    hosts: dict[str, ObjectStatus]
    services: dict[tuple[str, str], ObjectStatus]
    program: dict[str, str]


def parse_status(text: str) -> EngineStatus:
    hosts: dict[str, ObjectStatus] = {}
    services: dict[tuple[str, str], ObjectStatus] = {}
    program: dict[str, str] = {}
    for kind, attrs in _blocks(text, "="):
        if kind == "hoststatus" and "host_name" in attrs:
            hosts[attrs["host_name"]] = ObjectStatus.from_attributes(attrs)
        elif kind == "servicestatus" and "host_name" in attrs:
            services[(attrs["host_name"], attrs.get("service_description", ""))] = ObjectStatus.from_attributes(attrs)
        elif kind == "programstatus":
            program = attrs
    return EngineStatus(hosts, services, program)


T = TypeVar("T")


class WatchedFile(Generic[T]):
    """A parsed file, re-parsed when its inode, size or mtime changes, looked at most every ``min_interval`` s.

    Only the first read waits for the parse. After that, a request gets the last parsed value at once, and a due
    check re-reads the file in the background: the engine rewrites status.dat every few seconds, and at 100,000
    objects parsing it takes seconds, which no request should wait for.

    A file that is missing or unreadable gives ``None`` (logged once per change of condition, with ``meanwhile``:
    what the bridge does without it). Without the objects cache the bridge accepts any name, rather than refusing
    every result while the engine is down.
    """

    def __init__(self, path: Path, parse: Callable[[str], T], *, meanwhile: str = "", min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._parse = parse
        self._meanwhile = f": {meanwhile}" if meanwhile else ""
        self._min_interval = min_interval
        self._clock = clock
        self._signature: tuple[int, int, int] | None = None
        self._value: T | None = None
        self._checked_at: float | None = None
        self._problem: str | None = None
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> T | None:
        if self._checked_at is None:
            async with self._lock:  # the first read: everyone waits for the one parse
                if self._checked_at is None:
                    await self._refresh()
                    self._checked_at = self._clock()
            return self._value
        if self._refreshing is None and self._clock() - self._checked_at >= self._min_interval:
            self._checked_at = self._clock()
            self._refreshing = asyncio.create_task(self._refresh(), name=f"re-read {self.path}")
            self._refreshing.add_done_callback(self._refreshed)
        return self._value

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshing = None
        if not task.cancelled() and task.exception() is not None:
            log.error("cannot parse %s: %s", self.path, task.exception())

    async def refreshed(self) -> T | None:
        """The value once any background re-read has finished (for tests and tools)."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        return self._value

    async def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if signature == self._signature:
                return
            async with aiofiles.open(self.path, encoding="utf-8", errors="replace") as handle:
                text = await handle.read()
            self._value = await asyncio.to_thread(self._parse, text)
            self._signature = signature
            if self._problem is not None:
                log.info("%s is readable again", self.path)
            self._problem = None
        except OSError as exc:
            problem = exc.strerror or str(exc)
            if problem != self._problem:
                log.warning("cannot read %s (%s)%s", self.path, problem, self._meanwhile)
            self._problem = problem
            self._value = None
            self._signature = None


OBJECTS_CACHE_MISSING = "host and service names are not checked until it is back"
# The engine removes status.dat when it stops (objects.cache stays): names are never checked against status.dat.
STATUS_FILE_MISSING = ("Alignak _feedback has no current states or check flags until it is back (the engine removes "
                       "it while it is stopped); host and service names are checked against engine.objects_cache, "
                       "not this file")


class EngineFiles:
    """The engine's objects cache and status file, each optional, each re-read when it changes."""

    def __init__(self, objects_cache: Path | None, status_file: Path | None) -> None:
        self._objects: WatchedFile[KnownObjects] | None = None
        self._status: WatchedFile[EngineStatus] | None = None
        self.update(objects_cache, status_file)

    def update(self, objects_cache: Path | None, status_file: Path | None) -> None:
        """Follow other paths (a reload); a path that stays keeps its parsed file."""
        if objects_cache != (self._objects.path if self._objects else None):
            self._objects = WatchedFile(objects_cache, parse_objects_cache, meanwhile=OBJECTS_CACHE_MISSING) \
                if objects_cache else None
        if status_file != (self._status.path if self._status else None):
            self._status = WatchedFile(status_file, parse_status, meanwhile=STATUS_FILE_MISSING) \
                if status_file else None

    async def objects(self) -> KnownObjects | None:
        return await self._objects.get() if self._objects else None

    async def status(self) -> EngineStatus | None:
        return await self._status.get() if self._status else None
