"""Shapes shared across the seams."""

from __future__ import annotations

from collections.abc import Callable

# Seconds since the epoch, as time.time gives them; injected so tests can fix the time.
Clock = Callable[[], float]
