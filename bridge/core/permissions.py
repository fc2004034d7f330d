"""Who may run what on which objects: per-user ``commands``, ``hosts`` and ``services`` grants (like NSCA-ng's).

Pure. The rules, in the order they apply:

- a user without ``commands`` may run every command whose target is a host, service, host group or service group;
  with ``commands`` (names and globs such as ``"PROCESS_*_CHECK_RESULT"``) only those;
- commands on contacts, on the whole engine and on the process (``SHUTDOWN_PROGRAM``, ``PROCESS_FILE``,
  ``DISABLE_NOTIFICATIONS`` …) need their exact name in ``commands`` — a glob never grants them;
- a user limited by ``hosts`` / ``services`` (globs, or ``re:`` + a regular expression) may only touch matching
  objects; a command that names no host the bridge can check (a group command, or one taking an id) then also
  needs its exact name in ``commands``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate

from bridge.core.command_table import ArgType, CommandSpec, Target
from bridge.core.commands import parameters
from bridge.core.errors import NotPermitted
from bridge.core.values import Command

OPEN_TARGETS = frozenset({Target.HOST, Target.SERVICE, Target.HOSTGROUP, Target.SERVICEGROUP})


@dataclass(frozen=True, slots=True)
class NamePattern:
    """A glob (``web-*``) or, with a ``re:`` prefix, a regular expression that must match the whole name."""

    text: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> NamePattern:
        """Raises ``re.error`` for a bad regular expression."""
        source = text[3:] if text.startswith("re:") else translate(text)
        return cls(text, re.compile(source))

    def matches(self, name: str) -> bool:
        return self.regex.fullmatch(name) is not None


def _any(patterns: Iterable[NamePattern], name: str) -> bool:
    return any(p.matches(name) for p in patterns)


@dataclass(frozen=True, slots=True)
class Grants:
    commands: tuple[str, ...] | None = None
    hosts: tuple[NamePattern, ...] | None = None
    services: tuple[NamePattern, ...] | None = None

    @property
    def limited(self) -> bool:
        return self.hosts is not None or self.services is not None

    def named(self, spec: CommandSpec) -> bool:
        return spec.name in (self.commands or ())

    def may_run(self, spec: CommandSpec) -> bool:
        """Whether the command itself is granted, objects aside."""
        if spec.target not in OPEN_TARGETS or (self.limited and not _names_a_host(spec)):
            return self.named(spec)
        if self.commands is None:
            return True
        return any(fnmatchcase(spec.name, pattern) for pattern in self.commands)

    def may_touch(self, host: str | None, service: str | None) -> bool:
        if host is not None and self.hosts is not None and not _any(self.hosts, host):
            return False
        return not (service is not None and self.services is not None and not _any(self.services, service))


def _names_a_host(spec: CommandSpec) -> bool:
    return any(p.type is ArgType.HOST for p in parameters(spec))


def objects_of(command: Command) -> tuple[str | None, str | None]:
    """The host and service a command acts on, where it names them."""
    host = service = None
    for param, value in zip(parameters(command.spec), command.fields, strict=True):
        if param.type is ArgType.HOST:
            host = value
        elif param.type is ArgType.SERVICE:
            service = value
    return host, service


def check_command(user: str, grants: Grants, spec: CommandSpec) -> None:
    """Raise NotPermitted unless ``grants`` allow running ``spec`` at all (objects aside)."""
    if not grants.may_run(spec):
        why = "" if spec.target in OPEN_TARGETS and not grants.limited else \
            f" (commands on the {spec.target.value} need a grant by name in the user's 'commands')"
        raise NotPermitted(f"user '{user}' may not run {spec.name}{why}")


def check(user: str, grants: Grants, command: Command) -> None:
    """Raise NotPermitted, naming the user, the command and the object, unless ``grants`` allow it."""
    check_command(user, grants, command.spec)
    if not grants.limited:
        return
    host, service = objects_of(command)
    if not grants.may_touch(host, service):
        target = f"service '{service}' on host '{host}'" if service is not None else f"host '{host}'"
        raise NotPermitted(f"user '{user}' may not run {command.spec.name} on {target}")
