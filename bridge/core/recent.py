"""What the bridge itself changed that the engine's status.dat may not show yet.

The engine rewrites status.dat every ``status_update_interval`` seconds (Nagios and Naemon: 10 by default), so a
flag or a custom variable the bridge changed a moment ago still shows its old value there. An Alignak client
that flips a flag twice within that time would be told "unchanged" the second time and the change dropped. So the
bridge remembers what it sent, and that wins over status.dat until status.dat shows it, or ``ttl`` seconds have
passed (then status.dat is the truth again, whoever changed the value since).
"""

from __future__ import annotations

from collections import OrderedDict

# (host, service or None, what: a flag's name or "_VARIABLE")
ChangeKey = tuple[str, str | None, str]

DEFAULT_TTL = 60.0
DEFAULT_LIMIT = 100_000


class RecentChanges:
    def __init__(self, ttl: float = DEFAULT_TTL, limit: int = DEFAULT_LIMIT) -> None:
        self.ttl, self.limit = ttl, limit
        self._sent: OrderedDict[ChangeKey, tuple[object, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def note(self, key: ChangeKey, value: object, now: float) -> None:
        self._sent.pop(key, None)
        self._sent[key] = (value, now)
        while len(self._sent) > self.limit:
            self._sent.popitem(last=False)

    def current(self, key: ChangeKey, engine_value: object, now: float) -> object:
        """The value as it is now: what the bridge sent, unless status.dat has caught up or it is too old."""
        entry = self._sent.get(key)
        if entry is None:
            return engine_value
        value, sent_at = entry
        if engine_value == value or now - sent_at > self.ttl:
            del self._sent[key]
            return engine_value
        return value
