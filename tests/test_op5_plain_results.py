"""``POST /api/results``: the quick check for the usual result gives exactly the command the general validation
gives, and leaves everything else (every mistake included) to it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.errors import InvalidInput
from bridge.intake.op5 import _batch_result, _plain_result

NOW = 1_700_000_000
NAMES = st.one_of(st.sampled_from(["web1", "db-2.example.com", "", "a;b", "a\nb", "x\0", "é", " padded "]),
                  st.text(max_size=6))
CODES = st.one_of(st.integers(-1, 5), st.sampled_from(["0", "1", "2", "3", "4", " 1", "01", True, None, 1.0]))
OUTPUTS = st.one_of(st.sampled_from(["OK", "", "\n", "a\r\nb\n", "x\0", "é", "ok|t=1", " ", "x" * 20_001]),
                    st.text(max_size=8))
STAMPS = st.one_of(st.integers(-5, 4_102_444_805), st.sampled_from([NOW, 4_102_444_800, 0, "+5m", None, True,
                                                                    1.5, "1700000000"]))
ITEMS = st.one_of(
    st.fixed_dictionaries({"host_name": NAMES, "status_code": CODES, "plugin_output": OUTPUTS},
                          optional={"service_description": st.one_of(NAMES, st.none()), "timestamp": STAMPS,
                                    "perf_data": st.just("x")}),
    st.lists(st.integers(), max_size=2), st.none())


def general(item: object) -> object:
    try:
        return _batch_result(0, item, NOW, "someone")
    except InvalidInput as exc:
        return exc


@settings(max_examples=1000)
@given(ITEMS)
def test_the_quick_check_gives_what_the_general_one_gives_or_leaves_it_to_it(item: object) -> None:
    quick = _plain_result(item, NOW)
    if quick is not None:
        assert general(item) == quick


def test_the_usual_results_take_the_quick_check() -> None:
    service = {"host_name": "web1", "service_description": "http", "status_code": 2, "plugin_output": "down"}
    host = {"host_name": "web1", "status_code": "0", "plugin_output": "up", "timestamp": NOW - 5}
    assert _plain_result(service, NOW) == general(service)
    assert _plain_result(host, NOW) == general(host)
