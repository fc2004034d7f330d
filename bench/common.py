"""What the benchmarks share: an engine stand-in that drains a FIFO as fast as it can."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


async def drain(path: Path, stop: asyncio.Event) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while not stop.is_set():
            await readable.wait()
            readable.clear()
            try:
                while os.read(fd, 1 << 20):
                    pass
            except BlockingIOError:
                pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)
