"""The cluster's pure parts: which engine a command goes to, and how commands and an engine's objects travel
through JetStream (one message per request and engine; one key-value entry per engine).

A message is one spool-able line, ``<engine> <id> <json>``: the edge's spool keeps it whole while JetStream is
out of reach, and the id travels with it as ``Nats-Msg-Id``, so a publish retried from the spool is stored once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple
from typing import Any

import orjson

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import OBJECT_TYPES, parameters
from bridge.core.objects import KnownObjects, ObjectInfo
from bridge.core.values import Command


def subject(stream: str, engine: str) -> str:
    """The subject of one engine's results in the stream (the stream takes ``<stream>.*``)."""
    return f"{stream}.{engine}"


def objects_bucket(stream: str) -> str:
    """The key-value bucket where each sink publishes its engine's objects, keyed by engine."""
    return f"{stream}_objects"


def encode_message(engine: str, message_id: str, commands: Sequence[Command]) -> bytes:
    body = orjson.dumps([[c.spec.name, list(c.fields), c.timestamp] for c in commands])
    return f"{engine} {message_id} ".encode() + body


def decode_message(line: bytes) -> tuple[str, str, bytes]:
    """``(engine, id, body)`` of a message line; ValueError for anything else."""
    engine, message_id, body = line.split(b" ", 2)
    return engine.decode(), message_id.decode(), body


def decode_commands(body: bytes) -> list[Command]:
    """The commands of a message body; ValueError (or KeyError for a command this bridge lacks) else."""
    return [Command(COMMANDS[name], tuple(fields), int(stamp)) for name, fields, stamp in orjson.loads(body)]


def encode_objects(objects: KnownObjects) -> bytes:
    return orjson.dumps({
        "hosts": {name: astuple(info) for name, info in objects.hosts.items()},
        "services": [[host, service, astuple(info)] for (host, service), info in objects.services.items()],
        "names": {kind.value: sorted(names) for kind, names in objects.names.items()},
    }, default=sorted)


def _info(values: Sequence[Any]) -> ObjectInfo:
    alias, notes, active, passive, freshness, threshold, check, retry, attempts, variables = values
    return ObjectInfo(alias, notes, active, passive, freshness, threshold, check, retry, attempts,
                      frozenset(variables))


def decode_objects(data: bytes) -> KnownObjects:
    raw = orjson.loads(data)
    return KnownObjects(
        hosts={name: _info(values) for name, values in raw["hosts"].items()},
        services={(host, service): _info(values) for host, service, values in raw["services"]},
        names={ArgType(kind): frozenset(names) for kind, names in raw["names"].items()})


def merged(engines: Mapping[str, KnownObjects]) -> KnownObjects:
    """Every engine's objects as one: what an edge checks names against (an unknown host: the same 4xx as one
    bridge beside one engine gives)."""
    hosts: dict[str, ObjectInfo] = {}
    services: dict[tuple[str, str], ObjectInfo] = {}
    names: dict[ArgType, set[str]] = {}
    for engine in sorted(engines, reverse=True):  # the first engine by name wins a host two engines have
        objects = engines[engine]
        hosts.update(objects.hosts)
        services.update(objects.services)
        for kind, found in objects.names.items():
            names.setdefault(kind, set()).update(found)
    return KnownObjects(hosts, services, {kind: frozenset(found) for kind, found in names.items()})


def engines_for(command: Command, engines: Mapping[str, KnownObjects]) -> list[str]:
    """Where a command goes: the engine that has its host (the first by name, should two have it); else every
    engine that has the group, contact or time period it names; a command naming no object (the whole engine:
    ``DISABLE_NOTIFICATIONS``) goes to every engine. Empty when no engine has what it names."""
    everyone = sorted(engines)
    for param, value in zip(parameters(command.spec), command.fields, strict=True):
        if not value:
            continue
        if param.type is ArgType.HOST:
            return [next(e for e in everyone if value in engines[e].hosts)] \
                if any(value in engines[e].hosts for e in everyone) else []
        if param.type in OBJECT_TYPES and param.type is not ArgType.SERVICE:
            return [e for e in everyone if value in engines[e].names.get(param.type, frozenset())]
    return everyone


def route(commands: Sequence[Command], engines: Mapping[str, KnownObjects]) -> list[tuple[str, list[Command]]]:
    """One request's commands, grouped by engine in the order each engine first appears; each group keeps the
    request's order. A command no engine has is left out (the edge's name check refuses it before)."""
    groups: dict[str, list[Command]] = {}
    for command in commands:
        for engine in engines_for(command, engines):
            groups.setdefault(engine, []).append(command)
    return list(groups.items())
