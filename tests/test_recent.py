"""RecentChanges: what the bridge sent wins over a status.dat that has not caught up, until it does or expires."""

from __future__ import annotations

from bridge.core.recent import RecentChanges

KEY = ("h", None, "active_checks_enabled")


def test_what_was_sent_wins_until_status_dat_shows_it() -> None:
    recent = RecentChanges(ttl=60)
    assert recent.current(KEY, False, 0) is False
    recent.note(KEY, True, 100)
    assert recent.current(KEY, False, 110) is True  # status.dat still old
    assert recent.current(KEY, True, 111) is True  # caught up: forgotten
    assert len(recent) == 0
    assert recent.current(KEY, False, 112) is False  # changed by someone else since: status.dat is the truth


def test_an_old_note_expires() -> None:
    recent = RecentChanges(ttl=60)
    recent.note(KEY, True, 100)
    assert recent.current(KEY, False, 161) is False


def test_the_oldest_notes_go_first_at_the_limit() -> None:
    recent = RecentChanges(limit=2)
    for n in range(3):
        recent.note(("h", None, str(n)), n, 0)
    assert len(recent) == 2 and recent.current(("h", None, "0"), "engine", 0) == "engine"
