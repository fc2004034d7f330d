"""Alignak WS host documents (``PATCH /host/<name>``) turned into commands, notes, issues and feedback.

Pure: the HTTP adapter (``api_alignak``) parses the body and sends the commands; this module decides what they
are. Stricter than Alignak on one point, documented in the README: any issue refuses the whole request and
nothing is written (Alignak still sends the valid siblings of a bad entry).

Order of commands for one object: checks enabled first (so a result in the same document is accepted), then
variables, then the livestate entries in order, then checks disabled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import command_from_params, find_command, parameters
from bridge.core.errors import InvalidInput
from bridge.core.objects import EngineStatus, KnownObjects, ObjectInfo, ObjectStatus
from bridge.core.values import (
    CheckResult,
    Command,
    EngineKind,
    HostState,
    ServiceState,
    checked_field,
    checked_text,
    compose_output,
)

HOST_STATES = {"UP": HostState.UP, "DOWN": HostState.DOWN, "UNREACHABLE": HostState.UNREACHABLE}
# Alignak sends UNREACHABLE for a service as code 4; Naemon maps any code above 3 to UNKNOWN, so 3 is the same.
SERVICE_STATES = {"OK": ServiceState.OK, "WARNING": ServiceState.WARNING, "CRITICAL": ServiceState.CRITICAL,
                  "UNKNOWN": ServiceState.UNKNOWN, "UNREACHABLE": ServiceState.UNKNOWN}
_HOST_KEYS = {"name", "livestate", "variables", "active_checks_enabled", "passive_checks_enabled", "services",
              "template"}
_SERVICE_KEYS = {"name", "livestate", "variables", "active_checks_enabled", "passive_checks_enabled"}
_LIVESTATE_KEYS = {"state", "output", "long_output", "perf_data", "timestamp"}
_FLAG_COMMANDS = {
    # (is service, flag) -> (enable command, disable command)
    (False, "active_checks_enabled"): ("ENABLE_HOST_CHECK", "DISABLE_HOST_CHECK"),
    (False, "passive_checks_enabled"): ("ENABLE_PASSIVE_HOST_CHECKS", "DISABLE_PASSIVE_HOST_CHECKS"),
    (True, "active_checks_enabled"): ("ENABLE_SVC_CHECK", "DISABLE_SVC_CHECK"),
    (True, "passive_checks_enabled"): ("ENABLE_PASSIVE_SVC_CHECKS", "DISABLE_PASSIVE_SVC_CHECKS"),
}


@dataclass(slots=True)
class HostUpdate:
    """What a host document asks for: ``commands`` to write (only if ``issues`` is empty), notes for ``_result``."""

    host_name: str
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    feedback: dict[str, object] = field(default_factory=dict)
    service_keys: dict[str, str] = field(default_factory=dict)  # feedback key -> service description


@dataclass(slots=True)
class _Target:
    host: str
    service: str | None
    label: str  # how messages name it
    info: ObjectInfo | None
    status: ObjectStatus | None
    enable: list[Command] = field(default_factory=list)
    disable: list[Command] = field(default_factory=list)
    variables: list[Command] = field(default_factory=list)
    results: list[Command] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def commands(self) -> list[Command]:
        return self.enable + self.variables + self.results + self.disable

    @property
    def changed(self) -> bool:
        return bool(self.enable or self.disable or self.variables)

    def command(self, name: str, *extra: str, now: int) -> Command:
        fields = (self.host,) + ((self.service,) if self.service is not None else ()) + extra
        return Command(COMMANDS[name], fields, now)


def plan_host_update(document: Mapping[str, object], url_name: str | None, *, known: KnownObjects | None,
                     status: EngineStatus | None, now: int, ignore_unknown_service: bool = True) -> HostUpdate:
    raw_name = document["name"] if "name" in document else url_name
    if not raw_name:
        return HostUpdate("", issues=["Missing targeted element."])
    if not isinstance(raw_name, str):
        return HostUpdate("", issues=[f"Host name must be a string, not {raw_name!r}."])
    update = HostUpdate(raw_name)
    try:
        host = checked_field("name", raw_name)
    except InvalidInput as exc:
        update.issues.append(f"Host name {raw_name!r} {exc.message}.")
        return update
    if known is not None and host not in known.hosts:
        update.issues.append(f"Requested host '{host}' does not exist. Note that host creation is not allowed.")
        if "template" in document:
            update.issues.append("The 'template' cannot be applied: the engine cannot create hosts at run time.")
        return update
    target = _Target(host, None, f"Host '{host}'", known.hosts.get(host) if known else None,
                     status.hosts.get(host) if status else None)
    _apply_object(document, target, _HOST_KEYS, update, now)
    if "template" in document:
        update.notes.append(f"Host '{host}' exists: its 'template' was ignored (templates only apply when a "
                            "host is created, and the engine cannot create hosts at run time).")
    update.feedback = _feedback(target)

    services: list[_Target] = []
    service_feedback: dict[str, object] = {}
    for key, entry, from_map in _service_entries(document.get("services"), update):
        # In the map form the key names the service when its entry has no name (friendlier than Alignak).
        name = entry.get("name", key if from_map else None)
        if not isinstance(name, str) or not name:
            update.issues.append(f"A service does not have a 'name' property (services entry {key!r}).")
            continue
        try:
            checked_field("services.name", name)
        except InvalidInput as exc:
            update.issues.append(f"Service name {name!r} {exc.message}.")
            continue
        if known is not None and (host, name) not in known.services:
            message = f"Requested service '{host}/{name}' does not exist. Note that service creation is not allowed."
            (update.notes if ignore_unknown_service else update.issues).append(message)
            continue
        service = _Target(host, name, f"Service '{host}/{name}'",
                          known.services.get((host, name)) if known else None,
                          status.services.get((host, name)) if status else None)
        _apply_object(entry, service, _SERVICE_KEYS, update, now)
        services.append(service)
        service_feedback[str(key)] = _feedback(service)
        update.service_keys[str(key)] = name
    if "services" in document:
        update.feedback["services"] = service_feedback

    update.commands = target.commands + [c for s in services for c in s.commands]
    for service in services:
        update.notes.append(f"{service.label} {'updated' if service.changed else 'unchanged'}.")
    update.notes.append(f"{target.label} {'updated' if target.changed else 'unchanged'}.")
    return update


def _service_entries(services: object, update: HostUpdate) -> list[tuple[str, Mapping[str, object], bool]]:
    """``services`` as ``(feedback key, entry, from a map)``: a map keyed by any label (the seed's form) or a
    list (newer clients, keyed by each entry's name in the feedback)."""
    if services is None:
        return []
    if isinstance(services, Mapping):
        items = [(str(key), entry, True) for key, entry in services.items()]
    elif isinstance(services, list):
        items = [(str(entry.get("name", index)) if isinstance(entry, Mapping) else str(index), entry, False)
                 for index, entry in enumerate(services)]
    else:
        update.issues.append(f"'services' must be a map or a list of services, not {type(services).__name__}.")
        return []
    entries = []
    for key, entry, from_map in items:
        if not isinstance(entry, Mapping):
            update.issues.append(f"Service entry {key!r} must be an object, not {type(entry).__name__}.")
        else:
            entries.append((key, entry, from_map))
    return entries


def _apply_object(entry: Mapping[str, object], target: _Target, allowed: set[str], update: HostUpdate,
                  now: int) -> None:
    for key in entry:
        if key not in allowed:
            update.notes.append(f"{target.label}: field '{key}' is not supported by naemon-bridge and was ignored.")
    for flag in ("active_checks_enabled", "passive_checks_enabled"):
        if flag in entry:
            _apply_flag(target, flag, entry[flag], update, now)
    if "variables" in entry:
        _apply_variables(target, entry["variables"], update, now)
    if "livestate" in entry:
        livestate = entry["livestate"]
        for item in livestate if isinstance(livestate, list) else [livestate]:
            _apply_livestate(target, item, update, now)


def _apply_flag(target: _Target, flag: str, value: object, update: HostUpdate, now: int) -> None:
    if not isinstance(value, bool):
        update.issues.append(f"{target.label}: {flag} must be true or false, not {value!r}.")
        return
    target.flags[flag] = value
    # Alignak sends a flag only when it differs from the current value. status.dat lags behind the engine by up
    # to its status_update_interval, so skipping on its word could drop a needed change; the commands are
    # idempotent, so the bridge always sends what the document asks for.
    enable, disable = _FLAG_COMMANDS[(target.service is not None, flag)]
    if value:
        target.enable.append(target.command(enable, now=now))
    else:
        target.disable.append(target.command(disable, now=now))


def _apply_variables(target: _Target, variables: object, update: HostUpdate, now: int) -> None:
    if not isinstance(variables, Mapping):
        update.issues.append(f"{target.label}: 'variables' must be an object of name: value pairs.")
        return
    command = "CHANGE_CUSTOM_HOST_VAR" if target.service is None else "CHANGE_CUSTOM_SVC_VAR"
    for raw_name, value in variables.items():
        # The engine takes the name without its leading underscore, in any case (engine.md, measured).
        name = str(raw_name).lstrip("_").upper()
        if value == "__delete__":
            update.issues.append(f"{target.label}: variable '{raw_name}' cannot be deleted: the engine cannot "
                                 "remove custom variables at run time.")
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            update.issues.append(f"{target.label}: variable '{raw_name}' must be a string or a number, "
                                 f"not {value!r}.")
            continue
        try:
            checked_field(f"variables.{raw_name}", name)
            text = checked_text(f"variables.{raw_name}", str(value))
        except InvalidInput as exc:
            update.issues.append(f"{target.label}: variable '{raw_name}' {exc.message}.")
            continue
        if target.info is not None and name not in target.info.variables:
            update.notes.append(f"{target.label}: variable '_{name}' is not defined on it, so it was not changed "
                                "(the engine only changes variables an object already defines).")
            continue
        target.variables.append(target.command(command, name, text, now=now))


def _apply_livestate(target: _Target, item: object, update: HostUpdate, now: int) -> None:
    if not isinstance(item, Mapping):
        update.issues.append(f"{target.label}: a livestate must be an object, not {type(item).__name__}.")
        return
    for key in item:
        if key not in _LIVESTATE_KEYS:
            update.notes.append(f"{target.label}: livestate field '{key}' is not supported and was ignored.")
    state_name = item.get("state")
    if state_name is None or state_name == "":
        update.issues.append("Missing state in the livestate.")
        return
    states: Mapping[str, HostState | ServiceState] = HOST_STATES if target.service is None else SERVICE_STATES
    state = states.get(str(state_name).upper())
    if state is None:
        if target.service is None:
            update.issues.append(f"Host state must be UP, DOWN or UNREACHABLE, and not '{state_name}'.")
        else:
            update.issues.append(f"Service {target.service} state must be OK, WARNING, CRITICAL, UNKNOWN or "
                                 f"UNREACHABLE, and not {state_name}.")
        return
    texts: dict[str, str] = {}
    for key in ("output", "long_output", "perf_data"):
        value = item.get(key, "")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            update.issues.append(f"{target.label}: livestate {key} must be a string, not {value!r}.")
            return
        texts[key] = str(value)
    timestamp = _timestamp(item.get("timestamp"), now)
    if timestamp is None:
        update.issues.append(f"{target.label}: livestate timestamp must be a unix time in seconds, "
                             f"not {item.get('timestamp')!r}.")
        return
    try:
        result = CheckResult(target.host, target.service, state,
                             compose_output(texts["output"], texts["long_output"], texts["perf_data"]), timestamp)
    except InvalidInput as exc:
        update.issues.append(f"{target.label}: livestate {exc.field} {exc.message}.")
        return
    target.results.append(result.command())


def _timestamp(value: object, now: int) -> int | None:
    if value is None:
        return now
    if isinstance(value, bool):
        return None
    try:
        stamp = int(float(value)) if isinstance(value, (str, int, float)) else None
    except (ValueError, OverflowError):  # not a number, NaN, or beyond a float (1e400, -Infinity)
        return None
    return stamp if stamp is not None and stamp >= 0 else None


def _feedback(target: _Target) -> dict[str, object]:
    """The object's properties as the engine's objects have them, with the flags this update sets."""
    feedback: dict[str, object] = {}
    if target.info is not None:
        info = target.info
        feedback = {"alias": info.alias, "notes": info.notes,
                    "active_checks_enabled": info.active_checks_enabled,
                    "passive_checks_enabled": info.passive_checks_enabled,
                    "check_freshness": info.check_freshness, "freshness_threshold": info.freshness_threshold,
                    "check_interval": info.check_interval, "retry_interval": info.retry_interval,
                    "max_check_attempts": info.max_check_attempts}
    if target.status is not None:
        feedback["active_checks_enabled"] = target.status.active_checks_enabled
        feedback["passive_checks_enabled"] = target.status.passive_checks_enabled
    feedback.update(target.flags)
    return feedback


def host_feedback(name: str, *, known: KnownObjects | None, status: EngineStatus | None) -> HostUpdate:
    """``GET /host/<name>``: the same ``_feedback`` as an update gives, with every service of the host."""
    update = plan_host_update({}, name, known=known, status=status, now=0)
    if not update.issues and known is not None:
        services = [(service, info) for (host, service), info in known.services.items() if host == name]
        update.feedback["services"] = {
            service: _feedback(_Target(name, service, "", info, status.services.get((name, service)) if status
                                       else None)) for service, info in services}
        update.service_keys = {service: service for service, _ in services}
    return update


def _stamp(document: Mapping[str, object], now: int) -> int:
    value = document.get("timestamp")
    if value is None:
        return now
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise InvalidInput("timestamp", "Timestamp must be an integer value")
    try:
        return int(value)
    except ValueError:  # digits int() does not take: superscripts ("²"), or more than 4,300 of them
        raise InvalidInput("timestamp", "Timestamp must be an integer value") from None


def plan_command(document: Mapping[str, object], *, engine: EngineKind, now: int, author: str) -> Command:
    """Alignak's ``POST /command``: ``command``, ``host``, ``service``, ``user`` or ``element`` (``h/s`` or
    ``h;s``), and ``parameters`` — the command's remaining arguments, ``;``-separated, in the engine's order."""
    name = document.get("command")
    if not name or not isinstance(name, str):
        raise InvalidInput("command", "Missing command parameter")
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


def event_notes(document: Mapping[str, object]) -> list[str]:
    """What ``POST /event``'s ``_result`` says besides the line. A ``service`` that is there but empty (``""``,
    ``0``, ``false``, ``null``) makes a host comment, as Alignak's ``if service_name:`` does; never silently."""
    if "service" not in document or document["service"]:
        return []
    given = json.dumps(document["service"])
    return [f"The comment went to host '{document['host']}' because 'service' was empty ({given}): "
            "leave 'service' out for a host comment, or name the service."]


def plan_event(document: Mapping[str, object], *, now: int, author: str) -> Command:
    """Alignak's ``POST /event``: a persistent comment on a host or a service."""
    for key in ("host", "comment"):
        if not document.get(key):
            raise InvalidInput(key, f"Missing {key} parameter")
    service = document.get("service")
    params: dict[str, object] = {"host_name": document["host"], "persistent": 1,
                                 "author": document.get("author") or author, "comment": document["comment"]}
    if service:
        params["service_description"] = service
    spec = COMMANDS["ADD_SVC_COMMENT" if service else "ADD_HOST_COMMENT"]
    return command_from_params(spec, params, now=_stamp(document, now), author=author)
