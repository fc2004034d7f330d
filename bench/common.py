"""What the benchmarks share: an engine stand-in that drains a FIFO as fast as it can, and ports."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Return once something listens on ``port`` on loopback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


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
