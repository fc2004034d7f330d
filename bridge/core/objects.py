"""What the engine knows: its objects (``objects.cache``) and their current status (``status.dat``).

The parsers are pure functions of the file's text; ``bridge.engine.files`` reads the files and re-reads them when
the engine rewrites them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from bridge.core.command_table import ArgType, CommandSpec
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

    def unknown_among(self, commands: Sequence[Command]) -> dict[int, UnknownObject]:
        """By position, each command that names an object the engine does not have: a batch's names checked in
        one loop (a set lookup per name; the general walk only for commands beyond a host and its service)."""
        hosts, services = self.hosts, self.services
        found: dict[int, UnknownObject] = {}
        for index, command in enumerate(commands):
            checks = _name_checks(command.spec)
            if len(checks) == 2 and checks[1][0] is ArgType.SERVICE and checks[0][0] is ArgType.HOST:
                fields = command.fields
                host = fields[checks[0][1]]
                service = fields[checks[1][1]]
                if host in hosts and service and (host, service) in services:  # the usual case: both known
                    continue
            elif not checks:
                continue
            problem = self.unknown(command)
            if problem is not None:
                found[index] = problem
        return found

    def unknown(self, command: Command) -> UnknownObject | None:
        """The first object the command names that the engine does not have, or None."""
        fields = command.fields
        checks = _name_checks(command.spec)
        if not checks:
            return None
        if checks[0][0] is ArgType.HOST and len(checks) < 3:  # most commands: a host, then maybe its service
            host = fields[checks[0][1]] or None
            if host is not None and host not in self.hosts:
                return UnknownObject(checks[0][2], f"the engine has no host '{host}'")
            if len(checks) == 1 or checks[1][0] is not ArgType.SERVICE:
                return self._others(fields, checks[1:], host)
            service = fields[checks[1][1]]
            if service and (host or "", service) not in self.services:
                return UnknownObject(checks[1][2], f"the engine has no service '{service}' on host '{host}'")
            return None
        return self._others(fields, checks, None)

    def _others(self, fields: tuple[str, ...], checks: tuple[_NameCheck, ...], host: str | None
                ) -> UnknownObject | None:
        for kind, index, name in checks:
            value = fields[index]
            if not value:
                continue
            if kind is ArgType.HOST:
                host = value
                if value not in self.hosts:
                    return UnknownObject(name, f"the engine has no host '{value}'")
            elif kind is ArgType.SERVICE:
                if (host or "", value) not in self.services:
                    return UnknownObject(name, f"the engine has no service '{value}' on host '{host}'")
            elif value not in self.names.get(kind, frozenset()):
                return UnknownObject(name, f"the engine has no {kind.value} '{value}'")
        return None


_NameCheck = tuple[ArgType, int, str]  # the kind of object, the field's position, the parameter's name


@cache  # specs are frozen and few: which fields name objects is derived once per spec, not per command
def _name_checks(spec: CommandSpec) -> tuple[_NameCheck, ...]:
    return tuple((param.type, index, param.name) for index, param in enumerate(parameters(spec))
                 if param.type is ArgType.SERVICE or param.type in OBJECT_TYPES)


def parse_objects_cache(text: str) -> KnownObjects:
    """The engine's objects. The engine writes its cache in one shape (``define KIND {``, a tab, key, tab, value
    lines, ``\t}``): that shape is read by a scan that picks out only the attributes the bridge uses (at 1,000,000
    objects, 36 million lines), anything else by the general line parser. Equal configurations share one
    ``ObjectInfo``, names are interned: most objects come from a few templates."""
    blocks = _canonical_blocks(text)
    return known_objects(_blocks(text, "\t") if blocks is None else blocks)


def known_objects(blocks: Iterable[tuple[str, dict[str, str]]]) -> KnownObjects:
    """The objects of a cache's ``(kind, attributes)`` blocks."""
    hosts: dict[str, ObjectInfo] = {}
    services: dict[tuple[str, str], ObjectInfo] = {}
    names: dict[ArgType, set[str]] = {kind: set() for kind in _GROUP_KEYS.values()}
    shared: dict[tuple[object, ...], ObjectInfo] = {}  # the attributes besides the names -> their ObjectInfo

    def info(attrs: dict[str, str], alias_key: str, *names: str) -> ObjectInfo:
        signature = (alias_key, *((k, v) for k, v in attrs.items() if k not in names))
        found = shared.get(signature)
        if found is None:
            found = shared[signature] = ObjectInfo.from_attributes(attrs, alias_key)
        return found

    for kind, attrs in blocks:
        if kind == "host" and "host_name" in attrs:
            hosts[sys.intern(attrs["host_name"])] = info(attrs, "alias", "host_name")
        elif kind == "service" and "host_name" in attrs and "service_description" in attrs:
            key = (sys.intern(attrs["host_name"]), sys.intern(attrs["service_description"]))
            services[key] = info(attrs, "display_name", "host_name", "service_description")
        elif kind in _GROUP_KEYS and f"{kind}_name" in attrs:
            names[_GROUP_KEYS[kind]].add(attrs[f"{kind}_name"])
    return KnownObjects(hosts, services, {k: frozenset(v) for k, v in names.items()})


# The attributes parse_objects_cache uses; every other line of a block is skipped by the regular expression.
_USED = ("host_name", "service_description", "alias", "display_name", "notes", "active_checks_enabled",
         "passive_checks_enabled", "check_freshness", "freshness_threshold", "check_interval", "retry_interval",
         "max_check_attempts", *(f"{kind}_name" for kind in _GROUP_KEYS))
# The whole cache in the engine's own shape: lines before the first block that open none (its header comment),
# then blocks of "define KIND {", attribute lines of a tab, a key and (after a tab) its value, and "\t}", with empty
# lines between them. Possessive: one pass, no backtracking, however large the file.
_CANONICAL = re.compile(r"(?:(?![^\n]*\{[ \t]*\n)[^\n]*\n)*+"
                        r"(?:define [^\s{}]++ \{\n(?:\t(?!\}\n)[^\s]++(?:\t[^\n]*+)?+\n)*+\t\}\n\n*+)*+")
_USED_NAMES = "|".join(_USED)
_USED_LINE = re.compile(rf"\n\t({_USED_NAMES}|_[^\t\n]*)(?:\t([^\n]*))?(?=\n|\Z)")  # a literal start: searched fast
_FIRST_BLOCK = re.compile(r"^define [^\s{}]+ \{\n", re.MULTILINE)
_OTHER_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # lines splitlines() would also end


def _canonical_blocks(text: str) -> Iterator[tuple[str, dict[str, str]]] | None:
    """The blocks of a cache in the engine's own shape, each with only the attributes the bridge uses (values
    stripped, as the line parser strips them); None when the text is not entirely in that shape."""
    if _CANONICAL.fullmatch(text) is None or _OTHER_BREAKS.search(text) is not None:
        return None
    first = _FIRST_BLOCK.search(text)
    return _scan_blocks(text, first.start() if first else len(text))


def _scan_blocks(text: str, start: int) -> Iterator[tuple[str, dict[str, str]]]:
    """Block by block from ``start``, by position: no copy of the text, no string per line."""
    end = len(text)
    while start < end:
        if text[start] == "\n":  # the empty lines between blocks
            start += 1
            continue
        # The block's end (a value's "}" is never alone after a tab); in a block without attributes, the line
        # break of its header.
        close = text.index("\n\t}\n", start)
        header = text.index(" {\n", start)
        kind = text[start + 7:header]
        yield kind, {key: value.strip() for key, value in _USED_LINE.findall(text, header + 2, close)}
        start = close + 4


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
