"""Alignak WS host documents (``PATCH /host/<name>``) turned into commands and the answer alignak-module-ws gives.

Pure: the HTTP adapter (``bridge.intake.alignak``) parses the body, sends the commands and adds the freshness
fields; this module decides what is sent and what the answer says. It follows the module's own code and tests
(docs/research/alignak-module-ws.md): the valid part of a document is applied and what was not is listed in
``_issues`` (then ``_status: ERR``); ``_result`` names exactly what was sent. Flags and variables are sent only
when they differ from the engine's current value.

Order of commands for one object: checks enabled first (so a result in the same document is accepted), then
variables, then the livestate entries in order, then checks disabled. ``_result`` lists them in Alignak's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import command_from_params, command_text, find_command, parameters
from bridge.core.errors import InvalidInput
from bridge.core.objects import EngineStatus, KnownObjects, ObjectInfo, ObjectStatus
from bridge.core.recent import ChangeKey, RecentChanges
from bridge.core.values import (
    MAX_OUTPUT_CHARS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    CheckResult,
    Command,
    EngineKind,
    HostState,
    ServiceState,
    checked_field,
    checked_output,
    checked_text,
    compose_output,
)

HOST_STATES = {"UP": HostState.UP, "DOWN": HostState.DOWN, "UNREACHABLE": HostState.UNREACHABLE}
# Alignak sends UNREACHABLE for a service as code 4; Naemon maps any code above 3 to UNKNOWN, so 3 is the same.
SERVICE_STATES = {"OK": ServiceState.OK, "WARNING": ServiceState.WARNING, "CRITICAL": ServiceState.CRITICAL,
                  "UNKNOWN": ServiceState.UNKNOWN, "UNREACHABLE": ServiceState.UNKNOWN}
_FLAGS = ("active_checks_enabled", "passive_checks_enabled")
_FLAG_COMMANDS = {
    # (is service, flag) -> (enable command, disable command)
    (False, "active_checks_enabled"): ("ENABLE_HOST_CHECK", "DISABLE_HOST_CHECK"),
    (False, "passive_checks_enabled"): ("ENABLE_PASSIVE_HOST_CHECKS", "DISABLE_PASSIVE_HOST_CHECKS"),
    (True, "active_checks_enabled"): ("ENABLE_SVC_CHECK", "DISABLE_SVC_CHECK"),
    (True, "passive_checks_enabled"): ("ENABLE_PASSIVE_SVC_CHECKS", "DISABLE_PASSIVE_SVC_CHECKS"),
}
_FLAG_WORDS = {"active_checks_enabled": "active", "passive_checks_enabled": "passive"}
# The properties of an object the bridge can give in _feedback (alignak-module-ws's backend has more: location,
# _overall_state_id, ... — the engine has no such thing). freshness_state and the freshness fields come from the
# bridge's freshness table, added by the HTTP adapter.
FEEDBACK_PROPERTIES = ("alias", "notes", "active_checks_enabled", "passive_checks_enabled", "check_freshness",
                       "freshness_threshold", "freshness_state", "check_interval", "retry_interval",
                       "max_check_attempts", "ls_state_id", "ls_last_check", "customs", "stale")
# alignak-module-ws's own sample configuration (alignak-module-ws.ini) lists these for feedback_host.
ALIGNAK_SAMPLE_FEEDBACK_HOST = ("alias", "notes", "location", "active_checks_enabled", "max_check_attempts",
                                "check_interval", "retry_interval", "passive_checks_enabled", "check_freshness",
                                "freshness_state", "freshness_threshold", "_overall_state_id")


@dataclass(frozen=True, slots=True)
class AlignakOptions:
    """alignak-module-ws's switches, with its names and defaults (``ws.py``, ``alignak-module-ws.ini``)."""

    ignore_unknown_host: bool = False
    ignore_unknown_service: bool = True
    give_result: bool = False
    give_feedback: int = 1  # 0: none, 1: the host, 2: the host and its services
    feedback_host: tuple[str, ...] = ()
    feedback_service: tuple[str, ...] = ()
    set_timestamp: bool = True


@dataclass(slots=True)
class FeedbackSlot:
    """A ``_feedback`` dict the HTTP adapter completes with the freshness fields it was asked for."""

    values: dict[str, object]
    host: str
    service: str | None
    wanted: tuple[str, ...]


@dataclass(slots=True)
class HostUpdate:
    """What a host document asks for: ``commands`` to write (the valid part, even when ``issues`` is not empty)
    and the answer, as ``answer()`` shapes it."""

    host_name: str
    options: AlignakOptions
    commands: list[Command] = field(default_factory=list)
    result: list[str] | str = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    feedback: dict[str, object] | None = None
    slots: list[FeedbackSlot] = field(default_factory=list)
    error: str | None = None  # Alignak's "_error" answers (an empty document)
    changes: list[tuple[ChangeKey, object]] = field(default_factory=list)  # what ``commands`` set, for RecentChanges

    def answer(self) -> dict[str, object]:
        if self.error is not None:
            return {"_status": "ERR", "_error": self.error}
        answer: dict[str, object] = {"_status": "ERR" if self.issues else "OK"}
        if self.issues or self.options.give_result:
            answer["_result"] = self.result
        if self.issues:
            answer["_issues"] = self.issues
        if self.feedback is not None and self.options.give_feedback:
            answer["_feedback"] = self.feedback
        return answer


@dataclass(slots=True)
class _Target:
    host: str
    service: str | None
    label: str  # how Alignak's update lines name it: "Host 'h'", "Service 'h/s'"
    words: str  # how its flag lines name it: "Host h", "Service h/s"
    info: ObjectInfo | None
    status: ObjectStatus | None
    enable: list[Command] = field(default_factory=list)
    disable: list[Command] = field(default_factory=list)
    variables: list[Command] = field(default_factory=list)
    results: list[Command] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    update: bool | None = None  # Alignak's tri-state: None nothing but livestate asked, False nothing changed
    recent: RecentChanges | None = None
    changes: list[tuple[ChangeKey, object]] = field(default_factory=list)

    @property
    def commands(self) -> list[Command]:
        return self.enable + self.variables + self.results + self.disable

    def command(self, name: str, *extra: str, now: int) -> Command:
        fields = (self.host,) + ((self.service,) if self.service is not None else ()) + extra
        return Command(COMMANDS[name], fields, now)

    def asked(self) -> None:
        if self.update is None:
            self.update = False

    def current(self, what: str, engine_value: object, now: int) -> object:
        """The engine's value, or what the bridge sent a moment ago that status.dat does not show yet."""
        if self.recent is None:
            return engine_value
        return self.recent.current((self.host, self.service, what), engine_value, now)

    def changed(self, what: str, value: object) -> None:
        self.update = True
        self.changes.append(((self.host, self.service, what), value))


def _shown(command: Command, options: AlignakOptions, stamped: bool) -> str:
    """A command as ``_result`` shows it: Alignak writes ``[ts]`` when the client gave a time or set_timestamp is
    on. The engine always gets the time: Nagios and Naemon refuse a line without one."""
    text = command_text(command)
    return text if stamped or options.set_timestamp else text.partition("] ")[2]


def plan_host_update(document: Mapping[str, object], url_name: str | None, *, known: KnownObjects | None,
                     status: EngineStatus | None, now: int, options: AlignakOptions = AlignakOptions(),
                     recent: RecentChanges | None = None) -> HostUpdate:
    """Alignak's ``update_host``. ``known``/``status`` stand in for its backend (None: not configured, every name
    is taken as it is and flags count as changed)."""
    if not document:
        return HostUpdate("", options, error="You must send parameters on this endpoint.")
    raw_name = document.get("name") if document.get("name") is not None else url_name
    if not raw_name:
        return HostUpdate("", options, result="", issues=["Missing targeted element."])
    if not isinstance(raw_name, str):
        return HostUpdate("", options, result="", issues=[f"Host name must be a string, not {raw_name!r}."])
    update = HostUpdate(raw_name, options, result=[f"{raw_name} is alive :)"])
    result: list[str] = update.result  # type: ignore[assignment]
    try:
        host = checked_field("name", raw_name)
    except InvalidInput as exc:
        update.issues.append(f"Host name {raw_name!r} {exc.message}.")
        return update
    if known is not None and host not in known.hosts:
        if options.ignore_unknown_host:
            update.result = [f"Requested host '{host}' does not exist"]
        else:
            update.issues.append(f"Requested host '{host}' does not exist. Note that host creation is not allowed.")
            if document.get("template"):
                update.issues.append("The 'template' cannot be applied: the engine cannot create hosts at run "
                                     "time.")
        return update
    target = _Target(host, None, f"Host '{host}'", f"Host {host}", known.hosts.get(host) if known else None,
                     status.hosts.get(host) if status else None, recent=recent)
    _apply_properties(target, document, options, now)
    result.extend(target.lines)
    update.issues.extend(target.issues)

    service_commands: list[Command] = []
    service_changes: list[tuple[ChangeKey, object]] = []
    entries = document.get("services")
    if entries:
        service_feedback: list[dict[str, object]] = []
        update.feedback = {"services": service_feedback}
        for key, entry, from_map in _service_entries(entries, update):
            # In the map form (up to 1.1) the key names the service when its entry has no name.
            name = entry.get("name", key if from_map else None)
            if name is None:
                update.issues.append("A service does not have a 'name' property")
                continue
            plain = _plain_service(host, name, entry, known, options, now)
            if plain is not None:
                service_commands.append(plain)
                result.append(_shown(plain, options, False))
                continue
            service = _plan_service(host, name, entry, known, status, options, now, recent)
            if isinstance(service, str):
                (result if options.ignore_unknown_service else update.issues).append(service)
                continue
            service_commands.extend(service.commands)
            service_changes.extend(service.changes)
            result.extend(service.lines)
            update.issues.extend(service.issues)
            if not service.issues and options.give_feedback > 1:
                values = {"name": name, **_feedback(service, options.feedback_service)}
                service_feedback.append(values)
                update.slots.append(FeedbackSlot(values, host, service.service, options.feedback_service))
        if not service_feedback:
            del update.feedback["services"]

    if target.update is not None:
        result.append(f"Host '{host}' {'updated' if target.update else 'unchanged'}.")
    if not update.issues and options.give_feedback:
        feedback = update.feedback if update.feedback is not None else {}
        services_feedback = feedback.pop("services", None)
        feedback.update({"name": host, **_feedback(target, options.feedback_host)})
        if services_feedback is not None:
            feedback["services"] = services_feedback
        update.feedback = feedback
        update.slots.append(FeedbackSlot(feedback, host, None, options.feedback_host))
    update.commands = target.commands + service_commands
    update.changes = target.changes + service_changes
    return update


_PLAIN_SERVICE_KEYS = frozenset({"name", "livestate"})
_PLAIN_LIVESTATE_KEYS = frozenset({"state", "output", "long_output", "perf_data"})
_NOT_IN_NAMES = re.compile("[;\n\r\0]")  # what checked_field refuses in a name, found in one C call
_SERVICE_RESULT = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"]


def _plain_service(host: str, name: object, entry: Mapping[str, object], known: KnownObjects | None,
                   options: AlignakOptions, now: int) -> Command | None:
    """The service entry nearly every sender sends — an ASCII name the engine has and one livestate of a state
    and texts, no time — as its one command, without the general path's per-service records; None for anything
    else (and when services' feedback is asked for), which ``_plan_service`` plans and names what is wrong with.
    A property test holds the two to the same commands and lines."""
    if type(entry) is not dict or not _PLAIN_SERVICE_KEYS.issuperset(entry) or options.give_feedback > 1:
        return None
    item = entry.get("livestate")
    if type(item) is not dict or not _PLAIN_LIVESTATE_KEYS.issuperset(item):
        return None
    if type(name) is not str or not name or not name.isascii() or _NOT_IN_NAMES.search(name):
        return None
    if known is not None and (host, name) not in known.services:
        return None
    state_name = item.get("state")
    state = SERVICE_STATES.get(state_name.upper()) if type(state_name) is str else None
    output, long_output, perf_data = item.get("output", ""), item.get("long_output", ""), item.get("perf_data", "")
    if state is None or type(output) is not str or type(long_output) is not str or type(perf_data) is not str:
        return None
    text = compose_output(output, long_output, perf_data)
    if not text.isascii() or "\0" in text or len(text) > MAX_OUTPUT_CHARS:
        return None
    if not MIN_TIMESTAMP <= now <= MAX_TIMESTAMP:
        return None
    # checked_output cannot refuse it now: its line breaks are normalised, as always
    return Command(_SERVICE_RESULT, (host, name, str(int(state)), checked_output("plugin_output", text)), now)


def _apply_properties(target: _Target, document: Mapping[str, object], options: AlignakOptions, now: int) -> None:
    """What a host document and a service entry share, in Alignak's order: the flags, the variables, the
    livestate (one or a list)."""
    for flag in _FLAGS:
        _apply_flag(target, flag, document.get(flag), options, now)
    variables = document.get("variables")
    if variables:
        _apply_variables(target, variables, now)
    livestate = document.get("livestate")
    if livestate:
        for item in livestate if isinstance(livestate, list) else [livestate]:
            _apply_livestate(target, item, options, now)


def _plan_service(host: str, name: object, entry: Mapping[str, object], known: KnownObjects | None,
                  status: EngineStatus | None, options: AlignakOptions, now: int,
                  recent: RecentChanges | None) -> _Target | str:
    """Alignak's ``update_service``; a string: the service does not exist (an issue or a line, by
    ``ignore_unknown_service``)."""
    if not isinstance(name, str) or not name:
        return _Target(host, "", "", "", None, None, issues=[f"Service name {name!r} must be a non-empty string."])
    try:
        checked_field("services.name", name)
    except InvalidInput as exc:
        return _Target(host, "", "", "", None, None, issues=[f"Service name {name!r} {exc.message}."])
    if known is not None and (host, name) not in known.services:
        return f"Requested service '{host}/{name}' does not exist. Note that service creation is not allowed."
    service = _Target(host, name, f"Service '{host}/{name}'", f"Service {host}/{name}",
                      known.services.get((host, name)) if known else None,
                      status.services.get((host, name)) if status else None, recent=recent)
    _apply_properties(service, entry, options, now)
    if service.update is not None:
        # Alignak's own text: no period after "updated" for a service, one after "unchanged".
        service.lines.append(f"{service.label} {'updated' if service.update else 'unchanged.'}")
    return service


def _service_entries(services: object, update: HostUpdate) -> list[tuple[str, Mapping[str, object], bool]]:
    """``services`` as ``(key, entry, from a map)``: a list (1.2 onward) or a map keyed by any label (up to 1.1)."""
    if isinstance(services, Mapping):
        items = [(str(key), entry, True) for key, entry in services.items()]
    elif isinstance(services, list):
        items = [(str(index), entry, False) for index, entry in enumerate(services)]
    else:
        update.issues.append(f"'services' must be a list of services, not {type(services).__name__}.")
        return []
    entries = []
    for key, entry, from_map in items:
        if not isinstance(entry, Mapping):
            update.issues.append(f"Service entry {key!r} must be an object, not {type(entry).__name__}.")
        else:
            entries.append((key, entry, from_map))
    return entries


def _current_flag(target: _Target, flag: str) -> bool | None:
    source = target.status if target.status is not None else target.info
    return None if source is None else bool(getattr(source, flag))


def _apply_flag(target: _Target, flag: str, value: object, options: AlignakOptions, now: int) -> None:
    """Alignak acts on JSON booleans only (``""`` or ``"1"`` are ignored), and only when the value differs."""
    if not isinstance(value, bool):
        return
    target.asked()
    target.flags[flag] = value
    if target.current(flag, _current_flag(target, flag), now) == value:
        return
    target.changed(flag, value)
    enable, disable = _FLAG_COMMANDS[(target.service is not None, flag)]
    command = target.command(enable if value else disable, now=now)
    (target.enable if value else target.disable).append(command)
    target.lines.append(f"{target.words} {_FLAG_WORDS[flag]} checks will be {'enabled' if value else 'disabled'}.")
    target.lines.append(f"Sent external command: {_shown(command, options, False)}.")


def variable_text(value: object) -> str:
    """A variable's value as the engine stores it: text; a list or an object as its JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _apply_variables(target: _Target, variables: object, now: int) -> None:
    target.asked()
    if not isinstance(variables, Mapping):
        target.issues.append(f"{target.label}: 'variables' must be an object of name: value pairs.")
        return
    command = "CHANGE_CUSTOM_HOST_VAR" if target.service is None else "CHANGE_CUSTOM_SVC_VAR"
    current = target.status.variables if target.status is not None else {}
    for raw_name, value in variables.items():
        # The engine takes the name without its leading underscore, in any case (engine.md, measured).
        name = str(raw_name).lstrip("_").upper()
        defined = target.info is None or name in target.info.variables
        if value == "__delete__":
            if defined:
                target.issues.append(f"{target.label}: variable '_{name}' cannot be deleted: the engine cannot "
                                     "remove custom variables at run time.")
            continue
        try:
            checked_field(f"variables.{raw_name}", name)
            text = checked_text(f"variables.{raw_name}", variable_text(value))
        except InvalidInput as exc:
            target.issues.append(f"{target.label}: variable '{raw_name}' {exc.message}.")
            continue
        if not defined:
            target.issues.append(f"{target.label}: variable '_{name}' does not exist and cannot be created: the "
                                 "engine only changes custom variables an object already defines.")
            continue
        if target.current(f"_{name}", current.get(name), now) == text:
            continue
        target.changed(f"_{name}", text)
        target.variables.append(target.command(command, name, text, now=now))


def _timestamp(value: object) -> int | None:
    """Alignak's ``int(livestate.get('timestamp', 'ABC'))``: None (then now) for anything int() refuses. A time
    it takes but outside 1970-2100 is refused later, as every time the engine would get."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None


def _apply_livestate(target: _Target, item: object, options: AlignakOptions, now: int) -> None:
    if not isinstance(item, Mapping):
        target.issues.append(f"{target.label}: a livestate must be an object, not {type(item).__name__}.")
        return
    if "state" not in item:
        target.issues.append("Missing state in the livestate.")
        return
    state_name = str(item["state"]).upper()
    states: Mapping[str, HostState | ServiceState] = HOST_STATES if target.service is None else SERVICE_STATES
    state = states.get(state_name)
    if state is None:
        if target.service is None:
            target.issues.append(f"Host state must be UP, DOWN or UNREACHABLE, and not '{state_name}'.")
        else:
            target.issues.append(f"Service {target.service} state must be OK, WARNING, CRITICAL, UNKNOWN or "
                                 f"UNREACHABLE, and not {state_name}.")
        return
    texts: dict[str, str] = {}
    for key in ("output", "long_output", "perf_data"):
        value = item.get(key, "")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            target.issues.append(f"{target.label}: livestate {key} must be a string, not {value!r}.")
            return
        texts[key] = str(value)
    stamp = _timestamp(item.get("timestamp"))
    try:
        result = CheckResult(target.host, target.service, state,
                             compose_output(texts["output"], texts["long_output"], texts["perf_data"]),
                             stamp if stamp is not None else now)
    except InvalidInput as exc:
        target.issues.append(f"{target.label}: livestate {exc.field} {exc.message}.")
        return
    command = result.command()
    target.results.append(command)
    target.lines.append(_shown(command, options, stamp is not None))


def object_properties(info: ObjectInfo | None, status: ObjectStatus | None,
                      flags: Mapping[str, bool] | None = None) -> dict[str, object]:
    """An object's properties as Alignak's backend names them, as far as the engine has them."""
    values: dict[str, object] = {}
    if info is not None:
        values = {"alias": info.alias, "notes": info.notes,
                  "active_checks_enabled": info.active_checks_enabled,
                  "passive_checks_enabled": info.passive_checks_enabled,
                  "check_freshness": info.check_freshness, "freshness_threshold": info.freshness_threshold,
                  "check_interval": info.check_interval, "retry_interval": info.retry_interval,
                  "max_check_attempts": info.max_check_attempts}
    if status is not None:
        values.update({"active_checks_enabled": status.active_checks_enabled,
                       "passive_checks_enabled": status.passive_checks_enabled,
                       "ls_state_id": status.current_state, "ls_last_check": status.last_check,
                       "customs": {f"_{name}": value for name, value in sorted(status.variables.items())}})
    values.update(flags or {})
    return values


def _feedback(target: _Target, wanted: tuple[str, ...]) -> dict[str, object]:
    """The properties ``wanted`` (feedback_host / feedback_service) the object has, in the list's order, with the
    flags this update sets."""
    values = object_properties(target.info, target.status, target.flags)
    return {name: values[name] for name in wanted if name in values}


def host_record(name: str, *, known: KnownObjects | None, status: EngineStatus | None) -> dict[str, object] | None:
    """``GET /host/<name>``: the host as Alignak's backend would give it, as far as the engine knows it; None when
    the engine has no such host."""
    if known is not None and name not in known.hosts:
        return None
    return {"name": name, **object_properties(known.hosts.get(name) if known else None,
                                             status.hosts.get(name) if status else None)}


def _stamp(document: Mapping[str, object], now: int) -> int:
    value = document.get("timestamp")
    if value is None or value == "" or value == 0:  # Alignak's "if timestamp:"
        return now
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise InvalidInput("", "Timestamp must be an integer value")
    try:
        return int(value)
    except ValueError:  # digits int() does not take: superscripts ("²"), or more than 4,300 of them
        raise InvalidInput("", "Timestamp must be an integer value") from None


def plan_command(document: Mapping[str, object], *, engine: EngineKind, now: int, author: str) -> Command:
    """Alignak's ``POST /command``: ``command``, ``host``, ``service``, ``user`` or ``element`` (``h/s`` or
    ``h;s``), and ``parameters`` — the command's remaining arguments, ``;``-separated, in the engine's order."""
    name = document.get("command")
    if not name or not isinstance(name, str):
        raise InvalidInput("", "Missing command parameter")  # Alignak's texts, as they are
    spec = find_command(name.upper(), engine)
    stamp = _stamp(document, now)
    host, service, user = document.get("host"), document.get("service"), document.get("user")
    element = document.get("element")
    if isinstance(element, str) and element:
        host, _, rest = element.replace(";", "/").partition("/")
        service = rest or service
    given = {ArgType.HOST: host, ArgType.SERVICE: service, ArgType.CONTACT: user}
    params: dict[str, object] = {}
    remaining = []
    for param in parameters(spec):
        if given.get(param.type):
            params[param.name] = given[param.type]
        else:
            remaining.append(param)
    raw = document.get("parameters")
    values = str(raw).split(";") if raw not in (None, "") else []
    if len(values) > len(remaining) and (not remaining or remaining[-1].type not in (ArgType.STR, ArgType.OUTPUT)):
        raise InvalidInput("parameters", f"{spec.name} takes {len(remaining)} more parameters, not {len(values)}")
    for index, param in enumerate(remaining[:len(values)]):
        last = index == len(remaining) - 1
        params[param.name] = ";".join(values[index:]) if last else values[index]  # free text keeps its ';'
    return command_from_params(spec, params, now=stamp, author=author)


def plan_event(document: Mapping[str, object], *, now: int) -> Command:
    """Alignak's ``POST /event``: a persistent comment on a host or a service (``if service:``, as Alignak: an
    empty ``service`` makes a host comment). Author ``Alignak WS`` unless given, as Alignak writes it."""
    if not document.get("host") and not document.get("service"):
        raise InvalidInput("", "Missing host and/or service parameter.")
    if not document.get("comment"):
        raise InvalidInput("", "Missing comment. If you do not have any comment, do not comment ;)")
    if not document.get("host"):
        raise InvalidInput("", "Missing host parameter: the engine needs the service's host.")
    service = document.get("service")
    params: dict[str, object] = {"host_name": document["host"], "persistent": 1,
                                 "author": document.get("author") or "Alignak WS", "comment": document["comment"]}
    if service:
        params["service_description"] = service
    spec = COMMANDS["ADD_SVC_COMMENT" if service else "ADD_HOST_COMMENT"]
    return command_from_params(spec, params, now=_stamp(document, now), author="Alignak WS")


def stamped(document: Mapping[str, object]) -> bool:
    """Whether Alignak would show ``[ts]`` on a /command or /event line: only when the client gave a time."""
    return bool(document.get("timestamp"))
