"""objects.cache read by the scan for the engine's own shape finds exactly what the general line parser finds;
any other shape (spaces, comments, CRLF, braces in odd places) goes to the line parser whole."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.objects import _blocks, _canonical_blocks, known_objects, parse_objects_cache

KINDS = ["host", "service", "hostgroup", "servicegroup", "contact", "contactgroup", "timeperiod", "command"]
KEYS = ["host_name", "service_description", "alias", "display_name", "notes", "active_checks_enabled",
        "passive_checks_enabled", "check_freshness", "freshness_threshold", "check_interval", "max_check_attempts",
        "hostgroup_name", "servicegroup_name", "contact_name", "_LOCATION", "_x", "address", "check_command"]
VALUES = st.one_of(st.sampled_from(["h1", "h2", "s1", "1", "0", "5.000000", "", " padded ", "a{", "}", "x\ty",
                                    "{ }", "define host {"]),
                   st.text(st.characters(blacklist_categories=("Cs",)), max_size=6))
ODD = ["  ", "\r\n", "\t\t", " }", "{\n", "\t}  \n", "define x\n", "\n", "\x85", "\t}\n"]  # inserted anywhere
BLOCK = st.tuples(st.sampled_from(KINDS), st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=8))


def engine_shape(blocks: list[tuple[str, list[tuple[str, str]]]], header: bool) -> str:
    text = "########################################\n#       NAGIOS OBJECT CACHE FILE\n\n" if header else ""
    for kind, attributes in blocks:
        text += f"define {kind} {{\n" + "".join(f"\t{key}\t{value}\n" for key, value in attributes) + "\t}\n\n"
    return text


def reference(text: str) -> object:
    return known_objects(_blocks(text, "\t"))


@settings(max_examples=300)
@given(st.lists(BLOCK, max_size=6), st.booleans())
def test_the_engine_shape_is_read_as_the_line_parser_reads_it(blocks: list[tuple[str, list[tuple[str, str]]]],
                                                               header: bool) -> None:
    text = engine_shape(blocks, header)
    assert parse_objects_cache(text) == reference(text)


@settings(max_examples=300)
@given(st.lists(BLOCK, min_size=1, max_size=4), st.sampled_from(ODD), st.integers(0, 10_000))
def test_any_other_shape_is_read_as_the_line_parser_reads_it(blocks: list[tuple[str, list[tuple[str, str]]]],
                                                            odd: str, where: int) -> None:
    text = engine_shape(blocks, True)
    position = where % (len(text) + 1)
    text = text[:position] + odd + text[position:]
    assert parse_objects_cache(text) == reference(text)


def test_the_engine_shape_takes_the_scan_and_a_hand_written_cache_the_line_parser() -> None:
    written = engine_shape([("host", [("host_name", "web1")]), ("service", [("host_name", "web1"),
                                                                             ("service_description", "http")])], True)
    assert _canonical_blocks(written) is not None
    assert set(parse_objects_cache(written).services) == {("web1", "http")}
    by_hand = "define host {\n    host_name   web1\n}\n"
    assert _canonical_blocks(by_hand) is None
