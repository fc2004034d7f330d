"""The freshness table against a plain model, under random hosts and services, thresholds, results, clock steps,
reloads of the engine's objects and restarts.

The model keeps no heap: an object is due when its time has come, computed afresh at every sweep. Deadlines tie on
purpose (small whole thresholds, whole clock steps, a host and its services known at the same moment), which is
where a heap that compares keys breaks.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bridge.core.freshness import (
    ADDITIONAL_FRESHNESS_LATENCY,
    MIN_RESUBMIT_SECONDS,
    FreshnessRule,
    FreshnessTable,
    Key,
)
from bridge.core.objects import EngineStatus, KnownObjects, ObjectInfo, ObjectStatus

HOSTS = ("h1", "h2", "web*1")  # a glob character in a name must not match as one
SERVICES = (None, "s1", "s2")
KEYS = [(h, s) for h in HOSTS for s in SERVICES]

thresholds = st.sampled_from([1, 2, 3, 60, 100])
keys = st.sampled_from(KEYS)


def object_info(check_freshness: bool, freshness_threshold: int, check_interval: float,
                retry_interval: float) -> ObjectInfo:
    return ObjectInfo(alias="", notes="", active_checks_enabled=False, passive_checks_enabled=True,
                      check_freshness=check_freshness, freshness_threshold=freshness_threshold,
                      check_interval=check_interval, retry_interval=retry_interval, max_check_attempts=1,
                      variables=frozenset())


infos = st.builds(object_info, st.booleans(), st.sampled_from([0, 2, 3, 60]), st.sampled_from([0, 1, 2]),
                  st.sampled_from([0, 1]))
known_objects = st.one_of(st.none(), st.dictionaries(keys, infos).map(lambda objects: KnownObjects(
    {h: i for (h, s), i in objects.items() if s is None},
    {(h, s): i for (h, s), i in objects.items() if s is not None}, {})))
switch = st.sampled_from([None, "0", "1"])
rules = st.lists(st.builds(FreshnessRule, thresholds, st.sampled_from(["*", "h1", "h*", "web*1"]),
                           st.sampled_from([None, "*", "s1"])), max_size=3)


@dataclass
class Model:
    last_result: float
    reported: bool
    state: int | None
    threshold: float | None = None
    engine_checks: bool = False
    stale: bool = False
    submitted: float | None = None


class FreshnessMachine(RuleBasedStateMachine):
    @initialize(default=st.none() | thresholds, chosen_rules=rules, submit=st.booleans(),
                interval_length=st.sampled_from([1, 60]))
    def start(self, default: int | None, chosen_rules: list[FreshnessRule], submit: bool,
              interval_length: int) -> None:
        self.now = 1_000_000.0
        self.settings = {"rules": chosen_rules, "default_threshold": default, "submit_stale": submit,
                         "interval_length": interval_length}
        self.table = FreshnessTable(self.clock, **self.settings)  # type: ignore[arg-type]
        self.started_at = self.now
        self.model: dict[Key, Model] = {}
        self.known: KnownObjects | None = None
        self.status: EngineStatus | None = None

    def clock(self) -> float:
        return self.now

    # -- the model: what the README promises, computed without a heap ------------------------------------------
    def threshold(self, key: Key, with_engine: bool = True) -> tuple[float | None, bool]:
        info = None
        if with_engine and self.known is not None:
            info = self.known.hosts.get(key[0]) if key[1] is None else self.known.services.get((key[0], key[1]))
        if info is not None and info.check_freshness:
            if info.freshness_threshold > 0:
                return info.freshness_threshold, True
            interval = info.check_interval if key[1] is not None or info.check_interval else info.retry_interval
            return int(interval * self.settings["interval_length"]) + ADDITIONAL_FRESHNESS_LATENCY, True
        for freshness_rule in self.settings["rules"]:
            if freshness_rule.matches(key):
                return freshness_rule.threshold, False
        return self.settings["default_threshold"], False

    def submits(self, model: Model) -> bool:
        return bool(self.settings["submit_stale"]) and not model.engine_checks

    def model_due(self) -> set[Key]:
        due = set()
        for key, m in self.model.items():
            if m.threshold is None:
                continue
            if not m.stale and m.last_result + m.threshold <= self.now:
                due.add(key)
            elif m.stale and self.submits(m) and (
                    m.submitted is None or m.submitted + max(m.threshold, MIN_RESUBMIT_SECONDS) <= self.now):
                due.add(key)
        return due

    def model_apply(self) -> None:
        program = self.status.program if self.status is not None else {}
        service_globals = program.get("check_service_freshness", "1") == "1"
        host_globals = program.get("check_host_freshness", "0") == "1"
        candidates = set(self.model)
        if self.known is not None:
            candidates |= {(h, None) for h in self.known.hosts} | set(self.known.services)
        elif self.status is not None:
            candidates |= {(h, None) for h in self.status.hosts} | set(self.status.services)
        for key in candidates:
            threshold, engine = self.threshold(key)
            m = self.model.get(key)
            if m is None:
                if threshold is None:
                    continue
                status = None
                if self.status is not None:
                    status = self.status.hosts.get(key[0]) if key[1] is None else \
                        self.status.services.get((key[0], key[1]))
                seen = status if status is not None and status.has_been_checked else None
                m = self.model[key] = Model(seen.last_check if seen else self.started_at, seen is not None,
                                            seen.current_state if seen else None)
            m.threshold = threshold
            m.engine_checks = engine and (service_globals if key[1] is not None else host_globals)
            if threshold is None:
                m.stale = False

    # -- what happens to a bridge ---------------------------------------------------------------------------------
    @rule(key=keys, state=st.integers(0, 3), offset=st.sampled_from([-1, 0, 1, 2, 3, 100]))
    def result(self, key: Key, state: int, offset: int) -> None:
        timestamp = self.now - offset
        self.table.record(key[0], key[1], state, timestamp)
        m = self.model.get(key)
        if m is None:
            m = self.model[key] = Model(timestamp, True, state, self.threshold(key, with_engine=False)[0])
        m.last_result, m.reported, m.state, m.stale, m.submitted = timestamp, True, state, False, None

    @rule(step=st.sampled_from([0, 0.5, 1, 2, 3, 15, 59, 60, 61, 100]))
    def time_passes(self, step: float) -> None:
        self.now += step

    @rule(limit=st.none() | st.integers(1, 3))
    def sweep(self, limit: int | None) -> None:
        """As the monitor sweeps: in chunks of ``limit`` until nothing is due."""
        due = self.model_due()
        expected: Counter[tuple[Key, float, float]] = Counter()
        for key in due:
            m = self.model[key]
            assert m.threshold is not None
            if self.submits(m):
                expected[(key, self.now - m.last_result, m.threshold)] += 1
                m.submitted = self.now
            m.stale = True
        got: Counter[tuple[Key, float, float]] = Counter()
        for _ in range(100):  # far more chunks than objects: only a sweep that never ends runs out
            got.update((e.key, e.age, e.threshold) for e in self.table.sweep(limit))
            if not self.table.due():
                break
        assert not self.table.due(), "a sweep in chunks never ends"
        assert got == expected

    @rule(known=known_objects, checked=st.dictionaries(keys, st.tuples(st.booleans(), st.sampled_from([0, 5, 200]),
                                                                        st.integers(0, 2))),
          service_switch=switch, host_switch=switch, has_status=st.booleans())
    def engine_reloads(self, known: KnownObjects | None, checked: dict[Key, tuple[bool, int, int]],
                       service_switch: str | None, host_switch: str | None, has_status: bool) -> None:
        """A new objects cache and status.dat, as the monitor hands them over."""
        program = {name: value for name, value in (("check_service_freshness", service_switch),
                                                   ("check_host_freshness", host_switch)) if value is not None}

        def status(been_checked: bool, age: int, state: int) -> ObjectStatus:
            return ObjectStatus(state, int(self.now) - age, been_checked, False, True, {})

        self.known = known
        self.status = EngineStatus({h: status(*c) for (h, s), c in checked.items() if s is None},
                                   {(h, s): status(*c) for (h, s), c in checked.items() if s is not None},
                                   program) if has_status else None
        self.table.apply_engine(self.known, self.status)
        self.model_apply()

    @rule(default=st.none() | thresholds, chosen_rules=rules, submit=st.booleans())
    def bridge_reloads(self, default: int | None, chosen_rules: list[FreshnessRule], submit: bool) -> None:
        """New [freshness] settings; the monitor then applies the engine's objects again."""
        self.settings.update(rules=chosen_rules, default_threshold=default, submit_stale=submit)
        self.table.configure(**self.settings)  # type: ignore[arg-type]
        self.table.apply_engine(self.known, self.status)
        self.model_apply()

    @precondition(lambda self: self.model)
    @rule()
    def bridge_restarts(self) -> None:
        """The table saved, a new bridge started, the saved table loaded, the engine's objects applied."""
        saved = json.loads(json.dumps(self.table.dump()))
        self.table = FreshnessTable(self.clock, **self.settings)  # type: ignore[arg-type]
        self.started_at = self.now
        self.table.load(saved)
        self.table.apply_engine(self.known, self.status)
        self.model_apply()

    # -- what must always hold ------------------------------------------------------------------------------------
    @invariant()
    def counts_add_up(self) -> None:
        stale = sum(m.stale for m in self.model.values())
        assert self.table.counts() == {"fresh": len(self.model) - stale, "stale": stale}
        assert len(self.table) == len(self.model)

    @invariant()
    def rows_match_the_model_host_first(self) -> None:
        rows = list(self.table.rows())
        listed = [(r.host_name, r.service_description) for r in rows]
        assert listed == sorted(self.model, key=lambda k: (k[0], k[1] is not None, k[1] or ""))
        for r in rows:
            m = self.model[(r.host_name, r.service_description)]
            assert (r.stale, r.state, r.engine_checks) == (m.stale, m.state, m.engine_checks)
            assert r.threshold_s == (None if m.threshold is None else int(m.threshold))
            assert r.last_result == (int(m.last_result) if m.reported else None)
        assert [r for r in self.table.rows(stale_only=True)] == [r for r in rows if r.stale]

    @invariant()
    def due_is_what_the_model_says(self) -> None:
        assert self.table.due() == bool(self.model_due())

    @invariant()
    def every_object_with_a_deadline_has_exactly_one_live_heap_item(self) -> None:
        # White box: the heap's items are (deadline, sequence, key); an entry's live item carries its sequence.
        heap = self.table._heap
        live = Counter(item[2] for item in heap
                       if (e := self.table.entry(item[2][0], item[2][1])) is not None and e.heap_seq == item[1])
        for key, m in self.model.items():
            entry = self.table.entry(*key)
            assert entry is not None
            expects_deadline = m.threshold is not None and (not m.stale or self.submits(m))
            assert live[key] == (1 if expects_deadline else 0), (key, m, entry)
            if expects_deadline and not m.stale:
                assert m.threshold is not None and entry.deadline == m.last_result + m.threshold
            if expects_deadline and m.stale and m.submitted is not None:
                assert m.threshold is not None
                assert entry.deadline == m.submitted + max(m.threshold, MIN_RESUBMIT_SECONDS)
        assert len(heap) <= 2 * len(self.model) + 64, "superseded items pile up"


FreshnessMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
test_the_freshness_table_behaves_as_its_model = FreshnessMachine.TestCase
