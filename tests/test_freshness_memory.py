"""The freshness table's compact state: a result for a known object pushes nothing onto the deadline heap (its
item is moved on when it comes up), and names are kept once however many requests brought them."""

from __future__ import annotations

from bridge.core.freshness import SETTLE_LIMIT, FreshnessTable


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_results_for_a_known_object_leave_one_heap_item_and_it_still_goes_stale_on_time() -> None:
    clock = Clock()
    table = FreshnessTable(clock, default_threshold=600, submit_stale=True)
    for second in range(50):
        table.record("web1", "http", 0, clock.now + second)
    assert len(table._heap) == 1  # white box: not one item per result
    clock.now += 49 + 599  # the first result's deadline has passed, the last one's has not
    assert not table.due() and table.sweep() == []
    assert len(table._heap) == 1
    clock.now += 2
    events = table.sweep()
    assert [event.key for event in events] == [("web1", "http")]
    assert table.counts() == {"fresh": 0, "stale": 1}


def test_names_are_kept_once_however_many_requests_brought_them() -> None:
    table = FreshnessTable(Clock(), default_threshold=600)
    for service in ("a", "b"):
        table.record("".join(["we", "b1"]), "".join(["ht", "tp", service]), 0, 1_000_000.0)
    (host_a, _), (host_b, _) = table._entries  # white box: the keys
    assert host_a is host_b


def test_a_burst_of_postponed_items_is_settled_in_bounded_steps() -> None:
    """due() settles a bounded number of items; the sweep counts them against its limit: nothing is lost."""
    clock = Clock()
    table = FreshnessTable(clock, default_threshold=600, submit_stale=True)
    for n in range(3 * SETTLE_LIMIT):
        table.record(f"h{n}", None, 0, clock.now)
    for n in range(3 * SETTLE_LIMIT):
        table.record(f"h{n}", None, 0, clock.now + 100)  # every deadline moves 100 s later
    clock.now += 650  # every item comes up, every object is still fresh
    assert table.due()  # more items to move on than one call of due() settles: work for the sweep's chunks
    while table.due():
        assert table.sweep(limit=1000) == []
    clock.now += 51
    stale = []
    while table.due():
        stale += table.sweep(limit=1000)
    assert len(stale) == 3 * SETTLE_LIMIT
