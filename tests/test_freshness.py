"""The freshness table with a fake clock: fresh -> stale -> fresh, thresholds from the engine and from rules,
resubmission, engine-checked objects, and what survives a restart."""

from __future__ import annotations

import json

from bridge.core.freshness import FreshnessRule, FreshnessTable, freshness_feedback, human_duration
from bridge.core.objects import parse_objects_cache, parse_status
from bridge.core.values import HostState, ServiceState


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


OBJECTS = parse_objects_cache("""
define host {
\thost_name\tbackup-1
\tcheck_freshness\t0
\t}
define service {
\thost_name\tbackup-1
\tservice_description\tBackup nightly
\tcheck_freshness\t0
\tcheck_interval\t5
\t}
define service {
\thost_name\tbackup-1
\tservice_description\tengine-watched
\tcheck_freshness\t1
\tfreshness_threshold\t300
\t}
define service {
\thost_name\tbackup-1
\tservice_description\tautomatic
\tcheck_freshness\t1
\tfreshness_threshold\t0
\tcheck_interval\t5
\t}
""")
STATUS = parse_status("programstatus {\n\tcheck_service_freshness=1\n\tcheck_host_freshness=0\n\t}\n")


def table(clock: Clock, **options: object) -> FreshnessTable:
    options.setdefault("submit_stale", True)
    return FreshnessTable(clock, **options)  # type: ignore[arg-type]


def test_fresh_then_stale_then_fresh_again() -> None:
    clock = Clock()
    fresh = table(clock, rules=[FreshnessRule(threshold=100, host="backup-*", service="Backup*")])
    fresh.record("backup-1", "Backup nightly", 0, clock.now)
    assert fresh.sweep() == [] and fresh.counts() == {"fresh": 1, "stale": 0}
    clock.now += 100
    events = fresh.sweep()
    assert [(e.key, e.age, e.threshold) for e in events] == [(("backup-1", "Backup nightly"), 100, 100)]
    assert fresh.counts() == {"fresh": 0, "stale": 1}
    clock.now += 99
    assert fresh.sweep() == []  # once per episode ...
    clock.now += 1
    assert [e.age for e in fresh.sweep()] == [200]  # ... then again every threshold (at least 60 s apart)
    fresh.record("backup-1", "Backup nightly", 0, clock.now)
    assert fresh.counts() == {"fresh": 1, "stale": 0}
    clock.now += 99
    assert fresh.sweep() == []


def test_the_engines_thresholds_and_its_automatic_rule() -> None:
    clock = Clock()
    fresh = table(clock, interval_length=60)
    fresh.apply_engine(OBJECTS, STATUS)
    rows = {row.service_description: row for row in fresh.rows()}
    assert rows["engine-watched"].threshold_s == 300 and rows["engine-watched"].engine_checks
    assert rows["automatic"].threshold_s == 5 * 60 + 15  # check_interval x interval_length + 15 s latency
    assert "Backup nightly" not in rows  # no threshold anywhere: not tracked until it reports
    clock.now += 301
    assert fresh.sweep() == []  # the engine checks these itself: the bridge only reports
    assert fresh.counts()["stale"] == 1


def test_engine_threshold_without_the_engines_global_switch_is_the_bridges_to_act_on() -> None:
    clock = Clock()
    fresh = table(clock)
    fresh.apply_engine(OBJECTS, parse_status("programstatus {\n\tcheck_service_freshness=0\n\t}\n"))
    clock.now += 301
    assert [e.key for e in fresh.sweep()] == [("backup-1", "engine-watched")]


def test_rules_apply_in_order_before_the_default_and_objects_never_seen_count_from_start() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=1000,
                  rules=[FreshnessRule(threshold=50, host="backup-*", service="Backup*"),
                         FreshnessRule(threshold=70, host="backup-*", service="*"),
                         FreshnessRule(threshold=90, host="backup-*")])
    fresh.apply_engine(OBJECTS, STATUS)
    thresholds = {(r.host_name, r.service_description): r.threshold_s for r in fresh.rows()}
    assert thresholds[("backup-1", "Backup nightly")] == 50
    assert thresholds[("backup-1", None)] == 90  # a rule without service is for the host itself
    fresh.record("elsewhere", "svc", 0, clock.now)
    assert fresh.entry("elsewhere", "svc").threshold == 1000  # type: ignore[union-attr]
    clock.now += 50
    assert [e.key for e in fresh.sweep()] == [("backup-1", "Backup nightly")]  # from the bridge's start


def test_a_short_threshold_repeats_no_more_than_every_minute() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=3)
    fresh.record("h", None, 0, clock.now)
    clock.now += 3
    assert len(fresh.sweep()) == 1
    clock.now += 59
    assert fresh.sweep() == []
    clock.now += 1
    assert len(fresh.sweep()) == 1


def test_an_old_result_is_stale_at_once() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=60)
    fresh.record("h", None, 0, clock.now - 120)
    assert [e.age for e in fresh.sweep()] == [120]


def test_the_table_survives_a_restart_stale_episodes_included() -> None:
    clock = Clock()
    first = table(clock, default_threshold=100)
    first.record("h", "a", 2, clock.now)
    first.record("h", "b", 0, clock.now - 500)
    assert len(first.sweep()) == 1
    saved = json.loads(json.dumps(first.dump()))
    clock.now += 10
    second = table(clock, default_threshold=100)
    second.load(saved)
    second.apply_engine(None, parse_status("hoststatus {\n\thost_name=h\n\thas_been_checked=1\n"
                                           f"\tlast_check={int(clock.now)}\n\t}}\n"))
    rows = {r.service_description: r for r in second.rows()}
    assert rows["a"].last_result == 1_000_000 and rows["a"].age_s == 10 and rows["a"].state == 2
    assert rows["b"].stale and second.sweep() == []  # the episode goes on: no second stale result yet
    assert rows[None].last_result == int(clock.now)  # not in the saved table: status.dat's last_check


def test_durations_read_as_people_write_them() -> None:
    assert [human_duration(s) for s in (42, 180, 303, 3600, 93840)] == ["42s", "3m", "5m 3s", "1h", "26h 4m"]


def test_a_host_and_its_services_falling_due_together_go_stale_together() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=60)
    fresh.apply_engine(OBJECTS, STATUS)  # nothing has reported: every deadline is start + threshold
    clock.now += 60
    keys = {e.key for e in fresh.sweep()}
    assert {("backup-1", None), ("backup-1", "Backup nightly")} <= keys
    assert [r.service_description for r in fresh.rows(host="backup-1")][0] is None  # the host first


def test_a_restart_goes_on_with_a_stale_episode_whose_threshold_only_the_engine_gives() -> None:
    clock = Clock()
    no_engine_freshness = parse_status("programstatus {\n\tcheck_service_freshness=0\n\t}\n")
    first = table(clock)
    first.apply_engine(OBJECTS, no_engine_freshness)
    clock.now += 300
    assert [e.key for e in first.sweep()] == [("backup-1", "engine-watched")]
    second = table(clock)
    second.load(json.loads(json.dumps(first.dump())))
    second.apply_engine(OBJECTS, no_engine_freshness)
    assert second.counts()["stale"] == 1
    assert second.sweep() == []  # the same episode: its stale result was sent before the restart


def test_alignak_letters_are_by_object_kind_and_state() -> None:
    host_letters = [freshness_feedback(None, state)["freshness_state"] for state in HostState]
    service_letters = [freshness_feedback(None, state)["freshness_state"] for state in ServiceState]
    assert (host_letters, service_letters) == (["o", "d", "x"], ["o", "w", "c", "u"])


def test_frequent_results_against_a_long_threshold_leave_no_pile_of_superseded_deadlines() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=86400)
    for _ in range(10_000):  # every 10 s for a day and more
        fresh.record("h", "svc", 0, clock.now)
        clock.now += 10
    assert len(fresh._heap) <= 2 * len(fresh) + 64  # white box: the heap, not only what it answers
    assert fresh.sweep() == [] and not fresh.due()
    clock.now += 86400
    assert [e.key for e in fresh.sweep()] == [("h", "svc")]


def test_a_ttl_is_the_objects_threshold_over_the_engines_and_survives_a_restart() -> None:
    clock = Clock()
    fresh = table(clock, default_threshold=1000)
    fresh.apply_engine(OBJECTS, STATUS)
    fresh.record("backup-1", "engine-watched", 0, clock.now)
    fresh.set_ttl("backup-1", "engine-watched", 30)  # the engine's 300 s and its own check give way
    clock.now += 30
    assert [(e.key, e.threshold) for e in fresh.sweep()] == [(("backup-1", "engine-watched"), 30)]
    saved = json.loads(json.dumps(fresh.dump()))
    again = table(clock, default_threshold=1000)
    again.load(saved)
    again.apply_engine(OBJECTS, STATUS)
    assert again.ttl("backup-1", "engine-watched") == 30
    assert next(r for r in again.rows() if r.service_description == "engine-watched").threshold_s == 30
    again.set_ttl("backup-1", "engine-watched", 0)  # none any more: the engine's again, once it is applied
    again.apply_engine(OBJECTS, STATUS)
    row = next(r for r in again.rows() if r.service_description == "engine-watched")
    assert (row.threshold_s, row.engine_checks) == (300, True)
