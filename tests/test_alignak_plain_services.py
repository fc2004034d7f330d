"""The quick path for the usual Alignak service entry (``_plain_service``) is held to the general one
(``_plan_service``): whenever it plans an entry, the general path plans the same command and the same ``_result``
line, with no issue and no change noted; anything else it leaves to the general path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.alignak import AlignakOptions, _plain_service, _plan_service, _shown, plan_host_update
from bridge.core.objects import parse_objects_cache

NOW = 1_700_000_000
KNOWN = parse_objects_cache(
    "define host {\n\thost_name\th1\n\t}\n"
    "define service {\n\thost_name\th1\n\tservice_description\ts1\n\t}\n"
    "define service {\n\thost_name\th1\n\tservice_description\ts;2\n\t}\n")
# Each strategy leans to what the quick path takes, so that it is tried often, and mixes in what it must refuse.
NAMES = st.one_of(st.just("s1"), st.just("s1"), st.sampled_from(["s;2", "nosuch", "", "a\nb", "x\0", "é", " s1"]),
                  st.text(max_size=4), st.none(), st.integers(0, 3))
USUAL_TEXTS = st.sampled_from(["", "fine", "a|b"])
TEXTS = st.one_of(USUAL_TEXTS, USUAL_TEXTS, USUAL_TEXTS, st.text(max_size=6),
                  st.sampled_from(["a\r\nb\n\r", "x\0", "é", "\ud800", " ", "x" * 20_001, "\n"]),
                  st.one_of(st.integers(-1, 3), st.floats(allow_nan=True), st.booleans(), st.none()))
USUAL_STATES = st.sampled_from(["ok", "OK", "Warning", "critical", "unknown", "unreachable"])
STATES = st.one_of(USUAL_STATES, USUAL_STATES, USUAL_STATES,
                   st.sampled_from(["up", "bad", "", "ok ", "ok\0"]),
                   st.text(max_size=3), st.integers(0, 4), st.none())
USUAL_LIVESTATES = st.fixed_dictionaries({"state": STATES},
                                         optional={"output": TEXTS, "long_output": TEXTS, "perf_data": TEXTS})
LIVESTATES = st.one_of(
    USUAL_LIVESTATES, USUAL_LIVESTATES, USUAL_LIVESTATES,
    st.fixed_dictionaries({}, optional={"state": STATES, "output": TEXTS, "long_output": TEXTS, "perf_data": TEXTS,
                                        "timestamp": st.sampled_from([NOW - 5, "x", None])}),
    st.lists(st.fixed_dictionaries({"state": STATES}), max_size=2), st.none(), st.just("ok"))
USUAL_ENTRIES = st.fixed_dictionaries({"livestate": LIVESTATES}, optional={"name": NAMES})
ENTRIES = st.one_of(
    USUAL_ENTRIES, USUAL_ENTRIES, USUAL_ENTRIES,
    st.fixed_dictionaries({}, optional={"name": NAMES, "livestate": LIVESTATES,
                                        "active_checks_enabled": st.booleans(), "variables": st.just({"v": "1"})}),
    st.none(), st.lists(st.integers(), max_size=1))
OPTIONS = st.builds(AlignakOptions, give_feedback=st.sampled_from([0, 1, 2]), set_timestamp=st.booleans())


@settings(max_examples=2000, deadline=None)
@given(NAMES, ENTRIES, st.sampled_from([KNOWN, None]), OPTIONS, st.sampled_from([NOW, 0, 4_102_444_801]))
def test_the_quick_path_plans_what_the_general_one_plans_or_leaves_it_to_it(
        name: object, entry: object, known: object, options: AlignakOptions, now: int) -> None:
    quick = _plain_service("h1", name, entry, known, options, now)  # type: ignore[arg-type]
    if quick is None:
        return
    general = _plan_service("h1", name, entry, known, None, options, now, None)  # type: ignore[arg-type]
    assert not isinstance(general, str)
    assert general.commands == [quick]
    assert general.lines == [_shown(quick, options, False)]
    assert not general.issues and not general.changes


def test_the_usual_entry_takes_the_quick_path_and_the_answer_is_the_same() -> None:
    entry = {"name": "s1", "livestate": {"state": "warning", "output": "slow", "perf_data": "t=2"}}
    quick = _plain_service("h1", "s1", entry, KNOWN, AlignakOptions(), NOW)
    assert quick is not None and quick.fields == ("h1", "s1", "1", "slow|t=2")
    update = plan_host_update({"services": [entry, {"name": "nosuch", "livestate": {"state": "ok"}}]}, "h1",
                              known=KNOWN, status=None, now=NOW, options=AlignakOptions(give_result=True))
    assert update.commands == [quick]
    assert update.answer()["_result"] == [
        "h1 is alive :)", f"[{NOW}] PROCESS_SERVICE_CHECK_RESULT;h1;s1;1;slow|t=2",
        "Requested service 'h1/nosuch' does not exist. Note that service creation is not allowed."]
