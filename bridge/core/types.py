"""Shapes shared across the seams."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from bridge.core.values import Command

# Seconds since the epoch, as time.time gives them; injected so tests can fix the time.
Clock = Callable[[], float]


class CommandSink(Protocol):
    """Where a process that does not deliver hands its validated commands (a worker's way to its hub)."""

    async def submit(self, commands: Sequence[Command]) -> None:
        """Return once every command is in the engine's pipe or the spool; raise as the delivering process did."""
        ...
