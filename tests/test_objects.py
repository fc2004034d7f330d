"""The engine's files as the bridge follows them: parsed once at first use, then re-read in the background."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from bridge.engine.files import WatchedFile


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_changed_file_is_re_read_without_making_the_request_wait(tmp_path: Path) -> None:
    path = tmp_path / "status.dat"
    path.write_text("first")
    clock = Clock()
    may_finish = threading.Event()
    parsed: list[str] = []

    def parse(text: str) -> str:
        if parsed:  # every parse after the first is held until the test lets it finish
            may_finish.wait(10)
        parsed.append(text)
        return text

    watched = WatchedFile(path, parse, min_interval=1.0, clock=clock)
    assert await watched.get() == "first"  # the first read waits for the parse
    path.write_text("second, longer")
    assert await watched.get() == "first"  # not due yet: the file is looked at once a second at most
    clock.now += 1.5
    assert await watched.get() == "first"  # due: the re-read starts in the background, the answer is at once
    assert await watched.get() == "first"  # ... and while it runs (the parse is held)
    may_finish.set()
    assert await watched.refreshed() == "second, longer"
    assert await watched.get() == "second, longer"
    assert parsed == ["first", "second, longer"]


async def test_an_unchanged_file_is_not_parsed_again_and_a_missing_one_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "objects.cache"
    path.write_text("objects")
    clock = Clock()
    calls: list[str] = []
    watched = WatchedFile(path, lambda text: calls.append(text) or text, clock=clock)
    assert await watched.get() == "objects"
    clock.now += 5
    await watched.get()
    assert await watched.refreshed() == "objects"
    assert calls == ["objects"]
    os.remove(path)
    clock.now += 5
    await watched.get()
    assert await watched.refreshed() is None


async def test_concurrent_first_reads_share_one_parse(tmp_path: Path) -> None:
    path = tmp_path / "objects.cache"
    path.write_text("objects")
    calls: list[str] = []
    watched = WatchedFile(path, lambda text: calls.append(text) or text)
    assert await asyncio.gather(*(watched.get() for _ in range(10))) == ["objects"] * 10
    assert calls == ["objects"]
