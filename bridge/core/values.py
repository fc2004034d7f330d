"""Small immutable domain values: engine kinds, states, check results and commands.

Pure: no I/O and no clock. Every value validates itself when built, so a value that exists is safe to render.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from bridge.core.command_table import COMMANDS, CommandSpec
from bridge.core.errors import InvalidInput

# What Nagios 4 itself stores for an empty output; Naemon refuses an empty output argument and would drop the
# result (engine.md), so the bridge sends this text to both engines.
NO_OUTPUT = "(No output returned from plugin)"

# Measured: 20,000 characters of output arrived whole through a Nagios 4 and a Naemon FIFO (engine.md).
MAX_OUTPUT_CHARS = 20_000

_FORBIDDEN_IN_NAMES = {";": "';'", "\n": "a newline", "\r": "a carriage return", "\0": "a NUL byte"}


class EngineKind(StrEnum):
    NAEMON = "naemon"
    NAGIOS = "nagios"


class FsyncPolicy(StrEnum):
    """When appended records are forced to disk; see the README for what each survives."""

    ALWAYS = "always"  # before the answer: survives a crash of the process and of the machine
    INTERVAL = "interval"  # every spool.fsync_interval seconds: survives a process crash; power loss loses the last
    NEVER = "never"  # when the kernel likes: survives a process crash only


class HostState(IntEnum):
    UP = 0
    DOWN = 1
    UNREACHABLE = 2


class ServiceState(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def _encodable(field: str, value: str) -> str:
    if value.isascii():  # nearly always, and far cheaper than encoding
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode text (it holds a lone surrogate)") from None
    return value


def checked_field(field: str, value: str, *, allow_empty: bool = False) -> str:
    """A value for a field that is not the last on the line: it must not end the field or the line early."""
    _encodable(field, value)
    if not value and not allow_empty:
        raise InvalidInput(field, "must not be empty")
    for char, label in _FORBIDDEN_IN_NAMES.items():
        if char in value:
            raise InvalidInput(field, f"must not contain {label}")
    return value


def checked_text(field: str, value: str) -> str:
    """A free-text last argument (a comment, a variable value): may hold ';', but not a line break or NUL."""
    _encodable(field, value)
    for char in ("\n", "\r", "\0"):
        if char in value:
            raise InvalidInput(field, f"must not contain {_FORBIDDEN_IN_NAMES[char]}")
    return value


def checked_output(field: str, value: str) -> str:
    """Plugin output: line breaks are kept (they separate long output) and normalised to LF."""
    _encodable(field, value)
    if "\0" in value:
        raise InvalidInput(field, "must not contain a NUL byte")
    if len(value) > MAX_OUTPUT_CHARS:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {MAX_OUTPUT_CHARS} reach the engine")
    value = value.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    if not value.strip():
        return NO_OUTPUT
    return value


def compose_output(output: str, long_output: str = "", perf_data: str = "") -> str:
    """Plugin output as a plugin prints it: ``short|perf`` on the first line, then the long output."""
    text = f"{output}|{perf_data}" if perf_data else output
    return f"{text}\n{long_output}" if long_output else text


# The engines read times into time_t and compute with them (an end + 1 s, a flexible downtime's start + its
# duration, dates for their logs); measured: a year-1 or a 25-digit time reached them as is. Times outside 1970
# to 2100 are refused before they can.
MIN_TIMESTAMP, MAX_TIMESTAMP = 0, 4_102_444_800  # 1970-01-01 and 2100-01-01, 00:00 UTC


def checked_timestamp(field: str, value: int) -> int:
    if not MIN_TIMESTAMP <= value <= MAX_TIMESTAMP:
        raise InvalidInput(field, f"must be a time from 1970 to 2100 (unix seconds {MIN_TIMESTAMP} to "
                                  f"{MAX_TIMESTAMP}), not {value}")
    return value


@dataclass(frozen=True, slots=True)
class Command:
    """One validated external command: the fields of its line, in the engine's order, and its time.

    ``fields`` are final strings; the last one is plugin output when the spec says so, escaped only when the line
    is rendered (the escaping depends on the engine kind).
    """

    spec: CommandSpec
    fields: tuple[str, ...]
    timestamp: int

    def __post_init__(self) -> None:
        checked_timestamp("timestamp", self.timestamp)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A passive check result for a host (``service_description`` None) or a service."""

    host_name: str
    service_description: str | None
    state: HostState | ServiceState
    output: str
    timestamp: int

    def __post_init__(self) -> None:
        checked_field("host_name", self.host_name)
        if self.service_description is None:
            if not isinstance(self.state, HostState):
                raise InvalidInput("status_code", "a host result needs a host state (UP, DOWN or UNREACHABLE)")
        else:
            checked_field("service_description", self.service_description)
            if not isinstance(self.state, ServiceState):
                raise InvalidInput("status_code", "a service result needs a service state")
        checked_timestamp("timestamp", self.timestamp)
        object.__setattr__(self, "output", checked_output("plugin_output", self.output))

    def command(self) -> Command:
        if self.service_description is None:
            fields: tuple[str, ...] = (self.host_name, str(int(self.state)), self.output)
            spec = COMMANDS["PROCESS_HOST_CHECK_RESULT"]
        else:
            fields = (self.host_name, self.service_description, str(int(self.state)), self.output)
            spec = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"]
        return Command(spec, fields, self.timestamp)
