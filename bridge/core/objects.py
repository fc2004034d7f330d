"""What the engine knows: its objects (``objects.cache``) and their current status (``status.dat``).

The parsers are pure functions of the file's text; ``bridge.engine.files`` reads the files and re-reads them when
the engine rewrites them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bridge.core.command_table import ArgType
from bridge.core.commands import OBJECT_TYPES, parameters
from bridge.core.errors import UnknownObject
from bridge.core.values import Command

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
