"""The pure core: parameters -> commands -> the exact lines each engine must read."""

from __future__ import annotations

import pytest

from bridge.command_table import COMMANDS, ArgType
from bridge.commands import command_from_params, command_line, command_text, find_command, parameters
from bridge.errors import InvalidInput, UnknownCommand
from bridge.values import NO_OUTPUT, CheckResult, EngineKind, HostState, ServiceState, compose_output

NOW = 1_700_000_000
PSCR = COMMANDS["PROCESS_SERVICE_CHECK_RESULT"]
PHCR = COMMANDS["PROCESS_HOST_CHECK_RESULT"]


def line(spec, params, engine=EngineKind.NAGIOS, author="alice"):
    return command_line(command_from_params(spec, params, now=NOW, author=author), engine)


def test_the_table_holds_every_command_naemon_registers() -> None:
    assert len(COMMANDS) == 162
    assert [p.name for p in parameters(PSCR)] == ["host_name", "service_description", "status_code",
                                                  "plugin_output"]
    assert [p.type for p in parameters(COMMANDS["ACKNOWLEDGE_SVC_PROBLEM"])][:3] == [
        ArgType.HOST, ArgType.SERVICE, ArgType.STICKY]


def test_op5_seed_parameters_make_the_engines_line() -> None:
    params = {"host_name": "example_host_1", "service_description": "Example service", "status_code": "2",
              "plugin_output": "Example issue has occurred"}
    assert line(PSCR, params) == (f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;example_host_1;Example service;2;"
                                  "Example issue has occurred")


@pytest.mark.parametrize("value", [2, "2", " 2 ", 2.0])
def test_status_code_accepts_loose_numbers(value: object) -> None:
    assert line(PHCR, {"host_name": "h", "status_code": value, "plugin_output": "x"}).endswith(";h;2;x")


@pytest.mark.parametrize("spec,value", [(PSCR, 4), (PSCR, -1), (PHCR, 3), (PSCR, False), (PSCR, "two"),
                                        (PSCR, 2.5), (PSCR, None)])
def test_status_code_outside_the_engines_range_is_refused_by_name(spec, value: object) -> None:
    params = {"host_name": "h", "service_description": "s", "status_code": value}
    if spec is PHCR:
        params.pop("service_description")
    with pytest.raises(InvalidInput) as caught:
        line(spec, params)
    assert caught.value.field == "status_code"


@pytest.mark.parametrize("field,value", [("host_name", "a;b"), ("host_name", "a\nb"), ("host_name", "a\rb"),
                                         ("host_name", "a\0b"), ("service_description", "x;y"),
                                         ("service_description", "x\n[1] SHUTDOWN_PROGRAM"),
                                         ("host_name", ""), ("host_name", "\ud800")])
def test_names_that_could_break_the_line_are_refused(field: str, value: str) -> None:
    params = {"host_name": "h", "service_description": "s", "status_code": 0, field: value}
    with pytest.raises(InvalidInput) as caught:
        line(PSCR, params)
    assert caught.value.field == field


def test_output_for_nagios_escapes_backslashes_and_newlines() -> None:
    output = "C:\\new disk; full|used=5;8;9\nline two\r\nline three"
    assert line(PSCR, {"host_name": "h", "service_description": "s", "status_code": 1, "plugin_output": output}) \
        == f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;h;s;1;C:\\\\new disk; full|used=5;8;9\\nline two\\nline three"


def test_output_for_naemon_keeps_backslashes_and_writes_newlines_as_backslash_n() -> None:
    output = "C:\\new\nlong"
    rendered = line(PSCR, {"host_name": "h", "service_description": "s", "status_code": 1, "plugin_output": output},
                    EngineKind.NAEMON)
    assert rendered == f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;h;s;1;C:\\new\\nlong"
    assert "\n" not in rendered


@pytest.mark.parametrize("output", [None, "", "   ", "\n"])
def test_empty_output_becomes_the_engines_placeholder(output: object) -> None:
    params = {"host_name": "h", "status_code": 0}
    if output is not None:
        params["plugin_output"] = output
    assert line(PHCR, params).endswith(f";h;0;{NO_OUTPUT}")


def test_output_of_only_perfdata_is_kept() -> None:
    assert line(PHCR, {"host_name": "h", "status_code": 0, "plugin_output": "|rtt=1"}).endswith(";h;0;|rtt=1")


def test_output_too_long_or_with_nul_is_refused() -> None:
    for output in ("x" * 20_001, "a\0b"):
        with pytest.raises(InvalidInput) as caught:
            line(PHCR, {"host_name": "h", "status_code": 0, "plugin_output": output})
        assert caught.value.field == "plugin_output"


def test_unknown_parameter_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        line(PHCR, {"host_name": "h", "status_code": 0, "plugin_ouput": "typo"})
    assert caught.value.field == "plugin_ouput"
    assert "plugin_output" in caught.value.message


def test_booleans_sticky_and_author_default() -> None:
    ack = COMMANDS["ACKNOWLEDGE_SVC_PROBLEM"]
    params = {"host_name": "h", "service_description": "s", "sticky": True, "notify": "false", "persistent": 1,
              "comment": "on it; really"}
    assert line(ack, params) == f"[{NOW}] ACKNOWLEDGE_SVC_PROBLEM;h;s;2;0;1;alice;on it; really"
    with pytest.raises(InvalidInput, match="true or false"):
        line(ack, {**params, "notify": "maybe"})
    with pytest.raises(InvalidInput) as caught:
        line(ack, {**params, "comment": "two\nlines"})
    assert caught.value.field == "comment"


def test_find_command_suggests_close_names_and_knows_engine_kinds() -> None:
    with pytest.raises(UnknownCommand, match="PROCESS_SERVICE_CHECK_RESULT"):
        find_command("PROCESS_SERVICE_CHECK_RESULTS", EngineKind.NAGIOS)
    with pytest.raises(UnknownCommand, match="Naemon only"):
        find_command("ACKNOWLEDGE_HOST_PROBLEM_EXPIRE", EngineKind.NAGIOS)
    assert find_command("ACKNOWLEDGE_HOST_PROBLEM_EXPIRE", EngineKind.NAEMON).name.endswith("_EXPIRE")


def test_check_result_values_keep_host_and_service_states_apart() -> None:
    with pytest.raises(InvalidInput):
        CheckResult("h", None, ServiceState.WARNING, "x", NOW)
    with pytest.raises(InvalidInput):
        CheckResult("h", "s", HostState.DOWN, "x", NOW)
    result = CheckResult("h", "s", ServiceState.CRITICAL, compose_output("short", "long 1\nlong 2", "p=1"), NOW - 60)
    assert command_text(result.command()) == \
        f"[{NOW - 60}] PROCESS_SERVICE_CHECK_RESULT;h;s;2;short|p=1\nlong 1\nlong 2"
