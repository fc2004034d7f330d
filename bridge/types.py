"""Shapes shared across the seams: what request handlers hand their lines to, and the clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

Clock = Callable[[], float]


class LineSink(Protocol):
    """Takes a request's lines; returns once all of them are in the engine's pipe or the spool."""

    async def submit(self, lines: Sequence[bytes]) -> None: ...
