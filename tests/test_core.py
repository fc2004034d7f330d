"""The pure core: parameters -> commands -> the exact lines each engine must read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import command_from_params, command_line, command_text, find_command, parameters
from bridge.core.errors import InvalidInput, UnknownCommand
from bridge.core.values import NO_OUTPUT, CheckResult, EngineKind, HostState, ServiceState, compose_output

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


# Naemon's own command list (naemon-core's register_core_commands), kept in the repository so the test always runs.
SPEC_TABLE = Path(__file__).resolve().parent / "data" / "naemon-commands.tsv"
SAMPLES = {"host": ("h1", "h1"), "hostgroup": ("hg", "hg"), "servicegroup": ("sg", "sg"), "contact": ("c1", "c1"),
           "contactgroup": ("cg", "cg"), "timeperiod": ("tp", "tp"), "int": ("2", "2"), "ulong": (7, "7"),
           "bool": ("true", "1"), "timestamp": (1_700_000_100, "1700000100"), "str": ("some text", "some text")}


def _spec_rows() -> list[tuple[str, str]]:
    lines = [line for line in SPEC_TABLE.read_text().splitlines() if not line.startswith("#")]
    assert lines[0] == "command\ttarget\targuments"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 162  # as many as naemon-core registers: a cut copy must not pass
    return [(row[0], row[2] if len(row) > 2 else "") for row in rows]


def test_every_registered_command_builds_the_line_the_engine_expects() -> None:
    """Parameters named as op5 names them -> exactly the fields, in the engine's order, of the spec's table."""
    rows = _spec_rows()
    assert {name for name, _ in rows} == set(COMMANDS)
    for name, arguments in rows:
        params: dict[str, object] = {}
        expected: list[str] = []
        for argument in filter(None, arguments.split(";")):
            kind, _, arg_name = argument.partition("=")
            arg_name = arg_name.rstrip("?")
            if kind == "service":
                params.update(host_name="h1", service_description="svc 1")
                expected += ["h1", "svc 1"]
            else:
                value, field = SAMPLES[kind]
                if arg_name == "end_time":  # after start_time, as the bridge insists
                    value, field = 1_700_000_200, "1700000200"
                params[arg_name] = value
                expected.append(field)
        built = line(COMMANDS[name], params, EngineKind.NAEMON)
        assert built == f"[{NOW}] {name}" + "".join(f";{field}" for field in expected), name


def test_parameter_names_are_unique_within_every_command() -> None:
    for spec in COMMANDS.values():
        names = [p.name for p in parameters(spec)]
        assert len(names) == len(set(names)), spec.name


@pytest.mark.parametrize("value,expected", [
    (1_700_000_500, 1_700_000_500), ("1700000500", 1_700_000_500), ("+90", NOW + 90), ("+30m", NOW + 1800),
    ("+2h", NOW + 7200), ("+1d", NOW + 86400), ("+1w", NOW + 604800),
    ("2023-11-14T22:13:20+00:00", 1_700_000_000), ("2023-11-14T22:13:20Z", 1_700_000_000)])
def test_timestamps_take_unix_iso_and_relative_forms(value: object, expected: int) -> None:
    check = COMMANDS["SCHEDULE_HOST_CHECK"]
    assert line(check, {"host_name": "h", "check_time": value}) == f"[{NOW}] SCHEDULE_HOST_CHECK;h;{expected}"


def test_an_iso_time_without_offset_is_local_time() -> None:
    from datetime import datetime

    local = int(datetime(2026, 1, 31, 22, 0).timestamp())
    check = COMMANDS["SCHEDULE_HOST_CHECK"]
    assert line(check, {"host_name": "h", "check_time": "2026-01-31T22:00"}).endswith(f";{local}")


def test_nagios_cannot_carry_a_semicolon_in_a_custom_variable_but_naemon_can() -> None:
    change = COMMANDS["CHANGE_CUSTOM_HOST_VAR"]
    params = {"host_name": "h", "varname": "owner", "varvalue": "a; b"}
    assert line(change, params, EngineKind.NAEMON) == f"[{NOW}] CHANGE_CUSTOM_HOST_VAR;h;owner;a; b"
    with pytest.raises(InvalidInput) as caught:
        line(change, params, EngineKind.NAGIOS)
    assert caught.value.field == "varvalue"


def test_times_are_taken_exactly_from_1970_to_2100() -> None:
    """Every form of a time argument, and a command's own time, within the engine's range and no further."""
    from hypothesis import given
    from hypothesis import strategies as st

    from bridge.core.commands import parse_timestamp
    from bridge.core.values import MAX_TIMESTAMP, Command

    edges = st.sampled_from([-1, 0, 1, MAX_TIMESTAMP - 1, MAX_TIMESTAMP, MAX_TIMESTAMP + 1, 10**11, -(10**30)])

    @given(st.one_of(st.integers(-(10**12), 10**12), edges), st.sampled_from(["", "+", "+s", "+m", "+d", "+w"]))
    def check(value: int, form: str) -> None:
        unit = {"": 1, "s": 1, "m": 60, "d": 86400, "w": 604800}[form[1:]] if form else 1
        text = f"+{abs(value)}{form[1:]}" if form else str(value)
        stamp = NOW + abs(value) * unit if form else value
        if 0 <= stamp <= MAX_TIMESTAMP:
            assert parse_timestamp("end_time", text, NOW) == stamp
            assert Command(COMMANDS["SAVE_STATE_INFORMATION"], (), stamp).timestamp == stamp
        else:
            with pytest.raises(InvalidInput) as caught:
                parse_timestamp("end_time", text, NOW)
            assert caught.value.field == "end_time"
            with pytest.raises(InvalidInput):
                Command(COMMANDS["SAVE_STATE_INFORMATION"], (), stamp)

    check()
