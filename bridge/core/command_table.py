"""The one table of external commands: every command Naemon registers, its target and typed arguments.

Validation (``bridge.core.commands``), command lines, help and (later) OpenAPI all derive from this table. It is
the spec's ``commands.tsv`` (taken from naemon-core's ``register_core_commands``; tests/data/naemon-commands.tsv
is that table, and tests/test_core.py checks this one against it) with three refinements the
engine enforces at run time: a check result's ``status_code`` is a host or service state (ranges differ), its
output is ``output`` (escaped per engine kind), and an acknowledgement's ``sticky`` is 0, 1 or 2.

Columns: name, target, arguments in the engine's order as ``type=name`` (``?`` = may be left empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Target(StrEnum):
    HOST = "host"
    SERVICE = "service"
    HOSTGROUP = "hostgroup"
    SERVICEGROUP = "servicegroup"
    CONTACT = "contact"
    CONTACTGROUP = "contactgroup"
    GLOBAL = "global"
    PROCESS = "process"


class ArgType(StrEnum):
    HOST = "host"
    SERVICE = "service"  # two fields on the line: host;description
    HOSTGROUP = "hostgroup"
    SERVICEGROUP = "servicegroup"
    CONTACT = "contact"
    CONTACTGROUP = "contactgroup"
    TIMEPERIOD = "timeperiod"
    INT = "int"
    ULONG = "ulong"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    STR = "str"
    SERVICE_STATE = "service_state"
    HOST_STATE = "host_state"
    STICKY = "sticky"
    OUTPUT = "output"  # plugin output: escaped for the engine kind, may carry long output


@dataclass(frozen=True, slots=True)
class Argument:
    type: ArgType
    name: str
    optional: bool = False


# eq=False: each spec exists once, in COMMANDS, so identity is equality, and hashing one (every request looks
# derived facts up by spec) costs nothing instead of hashing all its arguments.
@dataclass(frozen=True, slots=True, eq=False)
class CommandSpec:
    name: str
    target: Target
    arguments: tuple[Argument, ...]
    naemon_only: bool = False


# Nagios 4.4 registers nearly the same set. Measured on Nagios 4.4.6 (each command written to its pipe): it logs
# "Unrecognized external command" for exactly these.
_NAEMON_ONLY = frozenset({"ACKNOWLEDGE_HOST_PROBLEM_EXPIRE", "ACKNOWLEDGE_SVC_PROBLEM_EXPIRE", "LOG"})

_TABLE = """\
ADD_HOST_COMMENT	host	host=host_name;bool=persistent;str=author;str=comment
DEL_HOST_COMMENT	host	ulong=comment_id
ADD_SVC_COMMENT	service	service=service;bool=persistent;str=author;str=comment
DEL_SVC_COMMENT	service	ulong=comment_id
ENABLE_SVC_CHECK	service	service=service
DISABLE_SVC_CHECK	service	service=service
SCHEDULE_SVC_CHECK	service	service=service;timestamp=check_time
DELAY_SVC_NOTIFICATION	service	service=service;timestamp=notification_time
DELAY_HOST_NOTIFICATION	host	host=host_name;timestamp=notification_time
DISABLE_NOTIFICATIONS	global
ENABLE_NOTIFICATIONS	global
RESTART_PROCESS	process
RESTART_PROGRAM	process
SHUTDOWN_PROCESS	process
SHUTDOWN_PROGRAM	process
ENABLE_HOST_SVC_CHECKS	host	host=host_name
DISABLE_HOST_SVC_CHECKS	host	host=host_name
SCHEDULE_HOST_SVC_CHECKS	host	host=host_name;timestamp=check_time
DEL_ALL_HOST_COMMENTS	host	host=host_name
DEL_ALL_SVC_COMMENTS	service	service=service
ENABLE_SVC_NOTIFICATIONS	service	service=service
DISABLE_SVC_NOTIFICATIONS	service	service=service
ENABLE_HOST_NOTIFICATIONS	host	host=host_name
DISABLE_HOST_NOTIFICATIONS	host	host=host_name
ENABLE_ALL_NOTIFICATIONS_BEYOND_HOST	host	host=host_name
DISABLE_ALL_NOTIFICATIONS_BEYOND_HOST	host	host=host_name
ENABLE_HOST_SVC_NOTIFICATIONS	host	host=host_name
DISABLE_HOST_SVC_NOTIFICATIONS	host	host=host_name
PROCESS_SERVICE_CHECK_RESULT	service	service=service;service_state=status_code;output=plugin_output
SAVE_STATE_INFORMATION	global
READ_STATE_INFORMATION	global
ACKNOWLEDGE_HOST_PROBLEM	host	host=host_name;sticky=sticky;bool=notify;bool=persistent;str=author;str=comment
ACKNOWLEDGE_HOST_PROBLEM_EXPIRE	host	host=host_name;sticky=sticky;bool=notify;bool=persistent;timestamp=end_time;str=author;str=comment
ACKNOWLEDGE_SVC_PROBLEM	service	service=service;sticky=sticky;bool=notify;bool=persistent;str=author;str=comment
ACKNOWLEDGE_SVC_PROBLEM_EXPIRE	service	service=service;sticky=sticky;bool=notify;bool=persistent;timestamp=end_time;str=author;str=comment
START_EXECUTING_SVC_CHECKS	global
STOP_EXECUTING_SVC_CHECKS	global
START_ACCEPTING_PASSIVE_SVC_CHECKS	global
STOP_ACCEPTING_PASSIVE_SVC_CHECKS	global
ENABLE_PASSIVE_SVC_CHECKS	service	service=service
DISABLE_PASSIVE_SVC_CHECKS	service	service=service
SEND_CUSTOM_HOST_NOTIFICATION	host	host=host_name;int=options;str=author;str=comment
SEND_CUSTOM_SVC_NOTIFICATION	service	service=service;int=options;str=author;str=comment
CHANGE_HOST_NOTIFICATION_TIMEPERIOD	host	host=host_name;timeperiod=notification_timeperiod
CHANGE_SVC_NOTIFICATION_TIMEPERIOD	service	service=service;timeperiod=notification_timeperiod
CHANGE_CONTACT_HOST_NOTIFICATION_TIMEPERIOD	contact	contact=contact_name;timeperiod=notification_timeperiod
CHANGE_CONTACT_SVC_NOTIFICATION_TIMEPERIOD	contact	contact=contact_name;timeperiod=notification_timeperiod
CHANGE_HOST_MODATTR	host	host=host_name;ulong=value
CHANGE_SVC_MODATTR	service	service=service;ulong=value
CHANGE_CONTACT_MODATTR	contact	contact=contact_name;ulong=value
CHANGE_CONTACT_MODHATTR	contact	contact=contact_name;ulong=value
CHANGE_CONTACT_MODSATTR	contact	contact=contact_name;ulong=value
DEL_DOWNTIME_BY_HOST_NAME	host	str=hostname?;str=service_description?;timestamp=downtime_start_time?;str=comment?
DEL_DOWNTIME_BY_HOSTGROUP_NAME	hostgroup	hostgroup=hostgroup_name;str=hostname?;str=service_description?;timestamp=downtime_start_time?;str=comment?
DEL_DOWNTIME_BY_START_TIME_COMMENT	global	timestamp=downtime_start_time?;str=comment?
ENABLE_EVENT_HANDLERS	global
DISABLE_EVENT_HANDLERS	global
ENABLE_HOST_EVENT_HANDLER	host	host=host_name
DISABLE_HOST_EVENT_HANDLER	host	host=host_name
ENABLE_SVC_EVENT_HANDLER	service	service=service
DISABLE_SVC_EVENT_HANDLER	service	service=service
ENABLE_HOST_CHECK	host	host=host_name
DISABLE_HOST_CHECK	host	host=host_name
START_OBSESSING_OVER_SVC_CHECKS	global
STOP_OBSESSING_OVER_SVC_CHECKS	global
REMOVE_HOST_ACKNOWLEDGEMENT	host	host=host_name
REMOVE_SVC_ACKNOWLEDGEMENT	service	service=service
SCHEDULE_FORCED_HOST_SVC_CHECKS	host	host=host_name;timestamp=check_time
SCHEDULE_FORCED_SVC_CHECK	service	service=service;timestamp=check_time
SCHEDULE_HOST_DOWNTIME	host	host=host_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
SCHEDULE_SVC_DOWNTIME	service	service=service;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
ENABLE_HOST_FLAP_DETECTION	host	host=host_name
DISABLE_HOST_FLAP_DETECTION	host	host=host_name
ENABLE_SVC_FLAP_DETECTION	service	service=service
DISABLE_SVC_FLAP_DETECTION	service	service=service
ENABLE_FLAP_DETECTION	global
DISABLE_FLAP_DETECTION	global
ENABLE_HOSTGROUP_SVC_NOTIFICATIONS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_SVC_NOTIFICATIONS	hostgroup	hostgroup=hostgroup_name
ENABLE_HOSTGROUP_HOST_NOTIFICATIONS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_HOST_NOTIFICATIONS	hostgroup	hostgroup=hostgroup_name
ENABLE_HOSTGROUP_SVC_CHECKS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_SVC_CHECKS	hostgroup	hostgroup=hostgroup_name
DEL_HOST_DOWNTIME	host	ulong=downtime_id
DEL_SVC_DOWNTIME	service	ulong=downtime_id
ENABLE_PERFORMANCE_DATA	global
DISABLE_PERFORMANCE_DATA	global
SCHEDULE_HOSTGROUP_HOST_DOWNTIME	hostgroup	hostgroup=hostgroup_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
SCHEDULE_HOSTGROUP_SVC_DOWNTIME	hostgroup	hostgroup=hostgroup_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
SCHEDULE_HOST_SVC_DOWNTIME	host	host=host_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
PROCESS_HOST_CHECK_RESULT	host	host=host_name;host_state=status_code;output=plugin_output
START_EXECUTING_HOST_CHECKS	global
STOP_EXECUTING_HOST_CHECKS	global
START_ACCEPTING_PASSIVE_HOST_CHECKS	global
STOP_ACCEPTING_PASSIVE_HOST_CHECKS	global
ENABLE_PASSIVE_HOST_CHECKS	host	host=host_name
DISABLE_PASSIVE_HOST_CHECKS	host	host=host_name
START_OBSESSING_OVER_HOST_CHECKS	global
STOP_OBSESSING_OVER_HOST_CHECKS	global
SCHEDULE_HOST_CHECK	host	host=host_name;timestamp=check_time
SCHEDULE_FORCED_HOST_CHECK	host	host=host_name;timestamp=check_time
START_OBSESSING_OVER_SVC	service	service=service
STOP_OBSESSING_OVER_SVC	service	service=service
START_OBSESSING_OVER_HOST	host	host=host_name
STOP_OBSESSING_OVER_HOST	host	host=host_name
ENABLE_HOSTGROUP_HOST_CHECKS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_HOST_CHECKS	hostgroup	hostgroup=hostgroup_name
ENABLE_HOSTGROUP_PASSIVE_SVC_CHECKS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_PASSIVE_SVC_CHECKS	hostgroup	hostgroup=hostgroup_name
ENABLE_HOSTGROUP_PASSIVE_HOST_CHECKS	hostgroup	hostgroup=hostgroup_name
DISABLE_HOSTGROUP_PASSIVE_HOST_CHECKS	hostgroup	hostgroup=hostgroup_name
ENABLE_SERVICEGROUP_SVC_NOTIFICATIONS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_SVC_NOTIFICATIONS	servicegroup	servicegroup=servicegroup_name
ENABLE_SERVICEGROUP_HOST_NOTIFICATIONS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_HOST_NOTIFICATIONS	servicegroup	servicegroup=servicegroup_name
ENABLE_SERVICEGROUP_SVC_CHECKS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_SVC_CHECKS	servicegroup	servicegroup=servicegroup_name
ENABLE_SERVICEGROUP_HOST_CHECKS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_HOST_CHECKS	servicegroup	servicegroup=servicegroup_name
ENABLE_SERVICEGROUP_PASSIVE_SVC_CHECKS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_PASSIVE_SVC_CHECKS	servicegroup	servicegroup=servicegroup_name
ENABLE_SERVICEGROUP_PASSIVE_HOST_CHECKS	servicegroup	servicegroup=servicegroup_name
DISABLE_SERVICEGROUP_PASSIVE_HOST_CHECKS	servicegroup	servicegroup=servicegroup_name
SCHEDULE_SERVICEGROUP_HOST_DOWNTIME	servicegroup	servicegroup=servicegroup_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
SCHEDULE_SERVICEGROUP_SVC_DOWNTIME	servicegroup	servicegroup=servicegroup_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
CHANGE_GLOBAL_HOST_EVENT_HANDLER	global	str=event_handler_command
CHANGE_GLOBAL_SVC_EVENT_HANDLER	global	str=event_handler_command
CHANGE_HOST_EVENT_HANDLER	host	host=host_name;str=event_handler_command
CHANGE_SVC_EVENT_HANDLER	service	service=service;str=event_handler_command
CHANGE_HOST_CHECK_COMMAND	host	host=host_name;str=check_command
CHANGE_SVC_CHECK_COMMAND	service	service=service;str=check_command
CHANGE_NORMAL_HOST_CHECK_INTERVAL	host	host=host_name;timestamp=check_interval
CHANGE_NORMAL_SVC_CHECK_INTERVAL	service	service=service;timestamp=check_interval
CHANGE_RETRY_SVC_CHECK_INTERVAL	service	service=service;timestamp=check_interval
CHANGE_MAX_HOST_CHECK_ATTEMPTS	host	host=host_name;int=check_attempts
CHANGE_MAX_SVC_CHECK_ATTEMPTS	service	service=service;int=check_attempts
SCHEDULE_AND_PROPAGATE_TRIGGERED_HOST_DOWNTIME	host	host=host_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
ENABLE_HOST_AND_CHILD_NOTIFICATIONS	host	host=host_name
DISABLE_HOST_AND_CHILD_NOTIFICATIONS	host	host=host_name
SCHEDULE_AND_PROPAGATE_HOST_DOWNTIME	host	host=host_name;timestamp=start_time;timestamp=end_time;bool=fixed;ulong=trigger_id;ulong=duration;str=author;str=comment
ENABLE_SERVICE_FRESHNESS_CHECKS	global
DISABLE_SERVICE_FRESHNESS_CHECKS	global
ENABLE_HOST_FRESHNESS_CHECKS	global
DISABLE_HOST_FRESHNESS_CHECKS	global
SET_HOST_NOTIFICATION_NUMBER	host	host=host_name;int=notification_number
SET_SVC_NOTIFICATION_NUMBER	service	service=service;int=notification_number
CHANGE_HOST_CHECK_TIMEPERIOD	host	host=host_name;timeperiod=check_timeperiod
CHANGE_SVC_CHECK_TIMEPERIOD	service	service=service;timeperiod=check_timeperiod
PROCESS_FILE	global	str=file_name;bool=delete
CHANGE_CUSTOM_HOST_VAR	host	host=host_name;str=varname;str=varvalue
CHANGE_CUSTOM_SVC_VAR	service	service=service;str=varname;str=varvalue
CHANGE_CUSTOM_CONTACT_VAR	contact	contact=contact_name;str=varname;str=varvalue
ENABLE_CONTACT_HOST_NOTIFICATIONS	contact	contact=contact_name
DISABLE_CONTACT_HOST_NOTIFICATIONS	contact	contact=contact_name
ENABLE_CONTACT_SVC_NOTIFICATIONS	contact	contact=contact_name
DISABLE_CONTACT_SVC_NOTIFICATIONS	contact	contact=contact_name
ENABLE_CONTACTGROUP_HOST_NOTIFICATIONS	contactgroup	contactgroup=contactgroup_name
DISABLE_CONTACTGROUP_HOST_NOTIFICATIONS	contactgroup	contactgroup=contactgroup_name
ENABLE_CONTACTGROUP_SVC_NOTIFICATIONS	contactgroup	contactgroup=contactgroup_name
DISABLE_CONTACTGROUP_SVC_NOTIFICATIONS	contactgroup	contactgroup=contactgroup_name
CHANGE_RETRY_HOST_CHECK_INTERVAL	host	host=host_name;timestamp=check_interval
LOG	global
"""


def _parse_argument(text: str) -> Argument:
    type_name, _, name = text.partition("=")
    optional = name.endswith("?")
    return Argument(ArgType(type_name), name.rstrip("?"), optional)


def _parse_table(text: str) -> dict[str, CommandSpec]:
    specs: dict[str, CommandSpec] = {}
    for row in text.splitlines():
        name, target, arguments = (row.split("\t") + [""])[:3]
        specs[name] = CommandSpec(
            name=name,
            target=Target(target),
            arguments=tuple(_parse_argument(a) for a in arguments.split(";") if a),
            naemon_only=name in _NAEMON_ONLY,
        )
    return specs


COMMANDS: dict[str, CommandSpec] = _parse_table(_TABLE)
