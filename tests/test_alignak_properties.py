"""Properties of the Alignak planner (bridge.core.alignak), for any document a client may send: it never raises, and
what it sends is exactly what ``_result`` lists (issue 16: partial application must not hide or invent a line)."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.alignak import AlignakOptions, plan_host_update
from bridge.core.commands import command_text
from bridge.core.objects import parse_objects_cache, parse_status

NOW = 1_700_000_000
_STAMP = re.compile(r"^\[\d+\] ")


def _bare(line: str) -> str:
    """A line without its "[ts] ": whether _result shows it is set_timestamp's business (tested end to end)."""
    return _STAMP.sub("", line)
KNOWN = parse_objects_cache(
    "define host {\n\thost_name\th1\n\tactive_checks_enabled\t0\n\tpassive_checks_enabled\t1\n\t_V\tx\n\t}\n"
    "define service {\n\thost_name\th1\n\tservice_description\ts1\n\tpassive_checks_enabled\t1\n\t_V\tx\n\t}\n"
    "define service {\n\thost_name\th1\n\tservice_description\ts2\n\tpassive_checks_enabled\t0\n\t}\n")
STATUS = parse_status("hoststatus {\n\thost_name=h1\n\tactive_checks_enabled=0\n\tpassive_checks_enabled=1\n"
                      "\t_V=0;x\n\t}\n")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=True),
                    st.sampled_from(["", "1", "up", "DOWN", "ok", "warning", "Critical", "unknown", "unreachable",
                                     "bad", "ABC", "__delete__", "a;b", "x\ny"]))
livestate = st.one_of(scalars, st.fixed_dictionaries({}, optional={
    "state": scalars, "output": scalars, "long_output": scalars, "perf_data": scalars,
    "timestamp": st.one_of(scalars, st.integers(0, 4_102_444_800))}))
variables = st.one_of(scalars, st.dictionaries(st.sampled_from(["v", "V", "_v", "w", "x;y"]),
                                               st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=3))
flags = {"active_checks_enabled": scalars, "passive_checks_enabled": scalars}
service = st.one_of(scalars, st.fixed_dictionaries({}, optional={
    "name": st.one_of(scalars, st.sampled_from(["s1", "s2", "nosuch", ""])),
    "livestate": st.one_of(livestate, st.lists(livestate, max_size=3)), "variables": variables, **flags}))
documents = st.fixed_dictionaries({}, optional={
    "name": st.one_of(scalars, st.sampled_from(["h1", "h2"])),
    "livestate": st.one_of(livestate, st.lists(livestate, max_size=3)), "variables": variables,
    "services": st.one_of(scalars, st.lists(service, max_size=4),
                          st.dictionaries(st.sampled_from(["a", "b"]), service, max_size=2)),
    "template": scalars, **flags})
options = st.builds(AlignakOptions, ignore_unknown_host=st.booleans(), ignore_unknown_service=st.booleans(),
                    give_result=st.booleans(), give_feedback=st.sampled_from([0, 1, 2]),
                    set_timestamp=st.booleans())


@settings(max_examples=400, deadline=None)
@given(documents, st.sampled_from(["h1", None]), options)
def test_what_is_sent_is_exactly_what_result_lists(document: dict, url_name: str | None,
                                                   options: AlignakOptions) -> None:
    update = plan_host_update(document, url_name, known=KNOWN, status=STATUS, now=NOW, options=options)
    answer = update.answer()
    assert answer["_status"] == ("ERR" if update.issues or update.error else "OK")
    if update.error:
        assert not update.commands
        return
    result = update.result if isinstance(update.result, list) else []
    listed: Counter[str] = Counter()
    for line in result:
        if line.startswith("Sent external command: "):
            listed[_bare(line.removeprefix("Sent external command: ").removesuffix("."))] += 1
        elif "CHECK_RESULT;" in line:
            listed[_bare(line)] += 1
    shown: Counter[str] = Counter()
    for command in update.commands:
        text = command_text(command)
        if command.spec.name.startswith("CHANGE_CUSTOM_"):
            target = f"'{command.fields[0]}'" if command.spec.name == "CHANGE_CUSTOM_HOST_VAR" else \
                f"'{command.fields[0]}/{command.fields[1]}'"
            assert any(line.endswith(f"{target} updated") or line.endswith(f"{target} updated.")
                       for line in result), (text, result)  # Alignak reports a variable as the object updated
            continue
        shown[_bare(text)] += 1
    assert shown == listed, (update.commands, result)
    if "_result" in answer:
        assert answer["_result"] == update.result


def test_ignore_unknown_host_answers_ok_with_alignaks_line() -> None:
    document = {"livestate": {"state": "up"}, "template": {"alias": "x"}}
    refused = plan_host_update(document, "h2", known=KNOWN, status=STATUS, now=NOW)
    assert refused.answer() == {"_status": "ERR", "_result": ["h2 is alive :)"], "_issues": [
        "Requested host 'h2' does not exist. Note that host creation is not allowed.",
        "The 'template' cannot be applied: the engine cannot create hosts at run time."]}
    ignored = plan_host_update(document, "h2", known=KNOWN, status=STATUS, now=NOW,
                               options=AlignakOptions(ignore_unknown_host=True, give_result=True))
    assert ignored.answer() == {"_status": "OK", "_result": ["Requested host 'h2' does not exist"]}
    assert not refused.commands and not ignored.commands


def test_unknown_services_by_ignore_unknown_service() -> None:
    document = {"services": [{"name": "nosuch", "livestate": {"state": "ok"}}, {"name": "s1",
                                                                               "livestate": {"state": "ok"}}]}
    line = "Requested service 'h1/nosuch' does not exist. Note that service creation is not allowed."
    kept = plan_host_update(document, "h1", known=KNOWN, status=STATUS, now=NOW,
                            options=AlignakOptions(give_result=True))
    assert kept.answer()["_status"] == "OK" and line in kept.answer()["_result"]  # type: ignore[operator]
    refused = plan_host_update(document, "h1", known=KNOWN, status=STATUS, now=NOW,
                               options=AlignakOptions(ignore_unknown_service=False))
    assert refused.answer()["_issues"] == [line]
    assert [c.spec.name for c in refused.commands] == ["PROCESS_SERVICE_CHECK_RESULT"]  # s1 applied all the same
