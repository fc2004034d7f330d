"""From loosely typed request parameters to validated commands, and from commands to the engine's lines.

Pure: no I/O, no clock (callers pass ``now``). Parameter names follow op5 (op5-command-api.md): the engine's own
argument names, with a ``service`` argument split into ``host_name`` + ``service_description``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import MappingProxyType

from bridge.core.command_table import COMMANDS, ArgType, CommandSpec
from bridge.core.errors import InvalidInput, MissingParameter, UnknownCommand
from bridge.core.values import (
    MAX_TIMESTAMP,
    NO_OUTPUT,
    Command,
    EngineKind,
    checked_field,
    checked_output,
    checked_text,
    checked_timestamp,
)

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

# Argument types whose values are names of engine objects (checked against the objects cache when known).
OBJECT_TYPES = frozenset({ArgType.HOST, ArgType.HOSTGROUP, ArgType.SERVICEGROUP, ArgType.CONTACT,
                          ArgType.CONTACTGROUP, ArgType.TIMEPERIOD})


@dataclass(frozen=True, slots=True)
class Parameter:
    """One request parameter as a client names it; a ``service`` argument yields two of these."""

    name: str
    type: ArgType
    optional: bool
    last: bool  # the last field of the line: a free-text value here may contain ';'


@cache  # specs are frozen and few: derive each one's parameters once, not on every request
def parameters(spec: CommandSpec) -> tuple[Parameter, ...]:
    """The request parameters of a command, in the engine's order."""
    result: list[Parameter] = []
    for index, argument in enumerate(spec.arguments):
        last = index == len(spec.arguments) - 1
        if argument.type is ArgType.SERVICE:
            result.append(Parameter("host_name", ArgType.HOST, argument.optional, False))
            result.append(Parameter("service_description", ArgType.SERVICE, argument.optional, last))
        else:
            result.append(Parameter(argument.name, argument.type, argument.optional, last))
    return tuple(result)


def find_command(name: str, engine: EngineKind) -> CommandSpec:
    """The command called ``name`` (upper case, as the engine names it), if the configured engine has it."""
    spec = COMMANDS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name.upper(), COMMANDS, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownCommand(f"unknown command '{name}'{hint}")
    if spec.naemon_only and engine is not EngineKind.NAEMON:
        raise UnknownCommand(f"{name} exists in Naemon only; the configured engine ({engine}) does not have it")
    return spec


def _text(field: str, value: object) -> str:
    if type(value) is str:  # nearly always: skip the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return str(value)


def _integer(field: str, value: object) -> int:
    if type(value) is str and len(value) < 20 and value.isascii() and value.isdigit():  # the common "2"
        return int(value)
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be a number, not {str(value).lower()}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # more digits than int() converts (4,300)
            raise InvalidInput(field, f"must be a whole number, not one of {len(value.strip())} digits") from None
    raise InvalidInput(field, f"must be a whole number, not {value!r}")


def parse_boolean(field: str, value: object) -> bool:
    """A loose boolean as clients send one: true/false, 1/0, or "true"/"false", "yes"/"no", "on"/"off"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInput(field, f"must be true or false (or 1 or 0), not {value!r}")


def _in_range(field: str, value: int, low: int, high: int, meaning: str) -> int:
    if not low <= value <= high:
        raise InvalidInput(field, f"must be {meaning}, not {value}")
    return value


_RELATIVE = re.compile(r"\+(\d+)([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DOWNTIME = ("start_time", "end_time", "fixed", "trigger_id", "duration")


def parse_timestamp(name: str, value: object, now: int) -> int:
    """Unix seconds, ISO 8601 (without an offset: local time, as the engine reads times) or ``+60m``/``+2h``/``+1d``
    from now (as Thruk's REST API takes them)."""
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith("+"):
        relative = _RELATIVE.fullmatch(text)
        if relative:
            amount = relative.group(1)
            if len(amount) > 12:  # far past 2100 in any unit; not worth converting
                raise InvalidInput(name, f"{text[:20]}… from now is after 2100, the last time the engine takes")
            return checked_timestamp(name, now + int(amount) * _UNIT_SECONDS[relative.group(2)])
    if text and not _INTEGER.fullmatch(text):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(name, f"must be unix seconds, an ISO 8601 time (2026-01-31T22:00) or a time "
                                     f"from now (+30m, +2h, +1d), not {value!r}") from None
        try:
            stamp = int(when.timestamp())
        except (ValueError, OverflowError):  # year 1 in local time is before year 1 in UTC, and so on
            raise InvalidInput(name, f"{text!r} is outside the times the engine takes (1970 to 2100)") from None
        return checked_timestamp(name, stamp)
    return checked_timestamp(name, _integer(name, value))


def _field_value(param: Parameter, value: object, now: int) -> str:
    """Validate one parameter and return it as it stands on the line."""
    name, kind = param.name, param.type
    if kind is ArgType.SERVICE_STATE:
        code = _in_range(name, _integer(name, value), 0, 3, "0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN)")
        return str(code)
    if kind is ArgType.HOST_STATE:
        return str(_in_range(name, _integer(name, value), 0, 2, "0 (UP), 1 (DOWN) or 2 (UNREACHABLE)"))
    if kind is ArgType.STICKY:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
            return "2" if parse_boolean(name, value) else "0"  # the engine's sticky acknowledgement is 2
        return str(_in_range(name, _integer(name, value), 0, 2, "0, 1 or 2 (2 = sticky)"))
    if kind is ArgType.BOOL:
        return "1" if parse_boolean(name, value) else "0"
    if kind is ArgType.INT:
        return str(_integer(name, value))
    if kind is ArgType.ULONG:
        return str(_in_range(name, _integer(name, value), 0, 2**63 - 1, "zero or a positive whole number"))
    if kind is ArgType.TIMESTAMP:
        return str(parse_timestamp(name, value, now))
    if kind is ArgType.OUTPUT:
        return checked_output(name, _text(name, value))
    text = _text(name, value)
    if kind is ArgType.STR and param.last:
        return checked_text(name, text)
    return checked_field(name, text, allow_empty=param.optional)


@cache
def is_downtime(spec: CommandSpec) -> bool:
    return {p.name for p in parameters(spec)} >= set(_DOWNTIME)


@cache
def defaults(spec: CommandSpec) -> Mapping[str, str]:
    """What a missing parameter becomes, in words: the one source for validation and the help output."""
    names = {p.name for p in parameters(spec)}
    described: dict[str, str] = {}
    if "author" in names:
        described["author"] = "the authenticated user's name"
    if "plugin_output" in names:
        described["plugin_output"] = NO_OUTPUT
    if is_downtime(spec):  # as Thruk's REST API does
        described.update(start_time="now", fixed="1", trigger_id="0", duration="end_time - start_time")
    return MappingProxyType(described)  # cached and shared: read-only


# The parameters whose defaults are values, not derived (duration is end_time - start_time): see the loop below.
_FALLBACK_NAMES = frozenset({"author", "plugin_output", "start_time", "fixed", "trigger_id"})


@dataclass(frozen=True, slots=True)
class _Form:
    """What validating a spec's parameters needs, derived once per spec rather than on every request."""

    expected: tuple[Parameter, ...]
    names: frozenset[str]
    defaulted: frozenset[str]  # missing parameters that take a default value (``defaults``)
    downtime: bool


@cache
def _form(spec: CommandSpec) -> _Form:
    described = defaults(spec)
    return _Form(parameters(spec), frozenset(p.name for p in parameters(spec)),
                 frozenset(name for name in described if name in _FALLBACK_NAMES), is_downtime(spec))


def command_from_params(spec: CommandSpec, params: Mapping[str, object], *, now: int, author: str) -> Command:
    """Validate a client's parameters for ``spec`` into a command timestamped ``now``.

    Every problem names the parameter. Missing parameters take ``defaults(spec)``; ``author`` is the
    authenticated user.
    """
    form = _form(spec)
    if not form.names.issuperset(params):
        takes = ", ".join(p.name for p in form.expected) or "no parameters"
        raise InvalidInput(sorted(set(params) - form.names)[0], f"is not a parameter of {spec.name} (it takes "
                                                                 f"{takes})")
    fields: dict[str, str] = {}
    for param in form.expected:
        name = param.name
        value = params.get(name)
        if value is not None and (value != "" or name == "plugin_output"):
            fields[name] = _field_value(param, value, now)
        elif name in form.defaulted:
            fallback = {"author": author, "plugin_output": "", "start_time": now, "fixed": 1, "trigger_id": 0}
            fields[name] = _field_value(param, fallback[name], now)
        elif name == "duration" and form.downtime:
            continue  # end_time - start_time, below
        elif param.optional:
            fields[name] = ""
        else:
            raise MissingParameter(name, f"is required by {spec.name}")
    if form.downtime:
        start, end = int(fields["start_time"]), int(fields["end_time"])
        if end <= start:
            raise InvalidInput("end_time", f"must be after start_time ({end} is not after {start})")
        duration = int(fields.setdefault("duration", str(end - start)))
        # Neither engine limits a downtime's length, but both drop a flexible one without a duration, and a
        # flexible one may start as late as end_time and then lasts duration: its end must stay a time they take.
        if fields["fixed"] == "0" and duration == 0:
            raise InvalidInput("duration", "must be more than 0 for a flexible downtime (fixed 0): the engine "
                                           "drops one without a duration")
        if fields["fixed"] == "0" and end + duration > MAX_TIMESTAMP:
            raise InvalidInput("duration", f"is too long: a flexible downtime that starts by end_time ({end}) and "
                                           f"lasts {duration} s would end after 2100, the last time the engine takes")
    return Command(spec, tuple(fields[p.name] for p in form.expected), now)


def escape_output(text: str, engine: EngineKind) -> str:
    """Plugin output as the engine must read it from its FIFO to store ``text`` (engine.md, measured).

    Nagios 4 unescapes ``\\n`` and ``\\\\``: escape both, and long output arrives as long output. Naemon unescapes
    nothing: a backslash passes as is, and a newline can only be written as the two characters ``\\n`` (it shows
    literally; only Naemon's query handler carries real multi-line output).
    """
    if engine is EngineKind.NAGIOS:
        text = text.replace("\\", "\\\\")
    return text.replace("\n", "\\n")


# Measured on Nagios 4.4.6: it cuts these commands' last argument at the first ';' (a comment, an output keep
# theirs), so a value with ';' would arrive truncated; Naemon takes the rest of the line (engine.md).
NAGIOS_CUTS_AT_SEMICOLON = frozenset({"CHANGE_CUSTOM_HOST_VAR", "CHANGE_CUSTOM_SVC_VAR", "CHANGE_CUSTOM_CONTACT_VAR"})


def command_line(command: Command, engine: EngineKind, *, query_handler: bool = False) -> str:
    """The exact line for the engine, without a trailing newline: for its command FIFO, or (``query_handler``)
    for Naemon's query handler, which takes plugin output as it is — real newlines, backslashes unescaped.

    Raises InvalidInput for a value the configured engine would silently truncate.
    """
    fields = list(command.fields)
    if engine is EngineKind.NAGIOS and command.spec.name in NAGIOS_CUTS_AT_SEMICOLON and ";" in fields[-1]:
        raise InvalidInput(command.spec.arguments[-1].name, "must not contain ';' with Nagios 4, which cuts a "
                                                             "custom variable's value at the first ';'")
    if fields and command.spec.arguments[-1].type is ArgType.OUTPUT and not query_handler:
        fields[-1] = escape_output(fields[-1], engine)
    return _line(command, fields)


def engine_lines(commands: Sequence[Command], engine: EngineKind, *, query_handler: bool) -> list[bytes]:
    """Every command rendered for the engine, all before any is written (one that cannot be written refuses the
    lot). Each API adapter and the freshness monitor hand these to the delivery task."""
    return [command_line(command, engine, query_handler=query_handler).encode() for command in commands]


def command_text(command: Command) -> str:
    """The command as a person reads it (real newlines in the output), as Alignak's ``_result`` shows it."""
    return _line(command, command.fields)


def _line(command: Command, fields: list[str] | tuple[str, ...]) -> str:
    if not fields:
        return f"[{command.timestamp}] {command.spec.name}"
    return f"[{command.timestamp}] {command.spec.name};{';'.join(fields)}"



_RAW_STAMP = re.compile(r"\[(\d+)\]\s*")


def command_from_text(text: str, engine: EngineKind, *, now: int, author: str) -> Command:
    """A raw external command as senders write it for the pipe (NRDP's ``submitcmd``: ``NAME;arg;arg``, with or
    without a leading ``[time]``), validated through the command table like any other request: never passed on
    as it came. Its fields are the command's parameters in the engine's order; the last may hold ``;`` when it is
    free text (a comment, an output), as the engine reads it, and optional ones at the end may be left off."""
    text = text.strip()  # NRDP's own writer adds a trailing space: no field ends in one it means
    stamp = now
    prefix = _RAW_STAMP.match(text)
    if prefix:
        stamp = parse_timestamp("command", prefix.group(1), now)
        text = text[prefix.end():]
    if not text:
        raise InvalidInput("command", "is empty")
    if "\n" in text or "\r" in text or "\0" in text:  # one command is one line: nothing may follow it
        raise InvalidInput("command", "must be one line: no line break or NUL byte")
    name, separator, rest = text.partition(";")
    spec = find_command(name.strip().upper(), engine)
    expected = parameters(spec)
    if not separator:
        fields: list[str] = []
    elif expected and (expected[-1].type is ArgType.OUTPUT or expected[-1].type is ArgType.STR):
        fields = rest.split(";", len(expected) - 1)
    else:
        fields = rest.split(";")
    optional_tail = 0
    for param in reversed(expected):
        if not param.optional:
            break
        optional_tail += 1
    if not len(expected) - optional_tail <= len(fields) <= len(expected):
        shape = ";".join([spec.name, *(p.name for p in expected)])
        raise InvalidInput("command", f"{spec.name} takes {len(expected)} fields ({shape}), not {len(fields)}")
    params = {param.name: value for param, value in zip(expected, fields, strict=False)}
    return command_from_params(spec, params, now=stamp, author=author)
