"""A reload names a changed [nsca] key as needing a restart (the listener keeps its socket and settings)."""

from __future__ import annotations

from bridge.config.model import parse_config
from bridge.daemon.reload import needs_restart


def test_nsca_changes_need_a_restart() -> None:
    users = [{"name": "nsca", "password": "x"}]
    old = parse_config({"nsca": {"listen": "127.0.0.1:5667", "user": "nsca", "password": "a"}, "users": users})
    new = parse_config({"nsca": {"listen": "127.0.0.1:5668", "user": "nsca", "password": "b",
                                 "encryption_method": 14}, "users": users})
    assert needs_restart(old, new) == ["nsca.listen", "nsca.password", "nsca.encryption_method"]
    assert needs_restart(old, old) == []
