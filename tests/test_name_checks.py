"""Names checked against the objects cache: a batch's checks (``unknown_among``, the fast path for a host and its
service) find exactly what the general walk over every parameter finds, with the same messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.command_table import COMMANDS, ArgType
from bridge.core.commands import OBJECT_TYPES, parameters
from bridge.core.errors import UnknownObject
from bridge.core.objects import KnownObjects, ObjectInfo
from bridge.core.values import Command

INFO = ObjectInfo("", "", False, True, False, 0, 5.0, 1.0, 1, frozenset())
NAMES = ["", "h1", "h2", "s1", "s2", "g1"]
SPECS = sorted(COMMANDS.values(), key=lambda spec: spec.name)


def walk(known: KnownObjects, command: Command) -> UnknownObject | None:
    """The reference: every parameter in order, as the check was first written."""
    host: str | None = None
    for param, value in zip(parameters(command.spec), command.fields, strict=True):
        if not value:
            continue
        if param.type is ArgType.HOST:
            host = value
            if value not in known.hosts:
                return UnknownObject(param.name, f"the engine has no host '{value}'")
        elif param.type is ArgType.SERVICE:
            if (host or "", value) not in known.services:
                return UnknownObject(param.name, f"the engine has no service '{value}' on host '{host}'")
        elif param.type in OBJECT_TYPES and value not in known.names.get(param.type, frozenset()):
            return UnknownObject(param.name, f"the engine has no {param.type.value} '{value}'")
    return None


known_objects = st.builds(
    lambda hosts, services, groups: KnownObjects(
        {h: INFO for h in hosts}, {key: INFO for key in services},
        {kind: frozenset(groups) for kind in OBJECT_TYPES - {ArgType.HOST}}),
    st.sets(st.sampled_from(NAMES[1:])), st.sets(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES[1:]))),
    st.sets(st.sampled_from(NAMES[1:])))


@st.composite
def commands(draw: st.DrawFn) -> Command:
    spec = draw(st.sampled_from(SPECS))
    fields = tuple(draw(st.sampled_from(NAMES)) for _ in parameters(spec))
    return Command(spec, fields, 1_700_000_000)


@settings(max_examples=300)
@given(known_objects, st.lists(commands(), max_size=8))
def test_a_batch_finds_what_the_walk_over_every_parameter_finds(known: KnownObjects, batch: list[Command]) -> None:
    expected = {index: problem for index, command in enumerate(batch)
                if (problem := walk(known, command)) is not None}
    found = known.unknown_among(batch)
    assert {i: (p.field, str(p)) for i, p in found.items()} == {i: (p.field, str(p)) for i, p in expected.items()}
    for index, command in enumerate(batch):
        alone = known.unknown(command)
        assert (None if alone is None else str(alone)) == (str(expected[index]) if index in expected else None)
