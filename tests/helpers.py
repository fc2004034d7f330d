"""Test helpers: HTTP calls, waiting on conditions, and reading the engine's files independently of the bridge."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from bridge.daemon.sandbox import NagiosSandbox

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def http(method: str, url: str, body: object = None, *, auth: tuple[str, str] | None = None,
         content_type: str | None = "application/json", raw: bytes | None = None,
         timeout: float = 30) -> tuple[int, dict]:
    """One request; returns (status, parsed JSON body) for every status, errors included. A request that gets no
    answer within ``timeout`` seconds raises."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    if content_type and data is not None:
        request.add_header("Content-Type", content_type)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _unescape_status_value(value: str) -> str:
    # status.dat writes newlines in long output as "\n" and backslashes as "\\"
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append({"n": "\n", "\\": "\\"}.get(value[i + 1], value[i:i + 2]))
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def read_status(path: Path) -> dict[tuple[str, str | None], dict[str, str]]:
    """status.dat as {(host, service or None): attributes}; long_plugin_output unescaped."""
    objects: dict[tuple[str, str | None], dict[str, str]] = {}
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return objects
    block: dict[str, str] | None = None
    kind = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{"):
            kind, block = stripped[:-1].strip(), {}
        elif stripped == "}" and block is not None:
            if kind == "hoststatus":
                objects[(block["host_name"], None)] = block
            elif kind == "servicestatus":
                objects[(block["host_name"], block["service_description"])] = block
            block = None
        elif block is not None and "=" in stripped:
            key, _, value = line.lstrip("\t").partition("=")
            block[key] = _unescape_status_value(value) if key == "long_plugin_output" else value
    return objects


def engine_outputs(engine: NagiosSandbox, host: str, service: str) -> list[str]:
    """Outputs of the service results the engine took for ``host``/``service``, in the order it took them (its
    log's EXTERNAL COMMAND lines)."""
    marker = f"EXTERNAL COMMAND: PROCESS_SERVICE_CHECK_RESULT;{host};{service};"
    return [line.split(marker, 1)[1].split(";", 1)[1] for line in engine.log_lines() if marker in line]


def read_blocks(path: Path, kind: str) -> list[dict[str, str]]:
    """Every ``kind {`` block of status.dat (``servicecomment``, ``servicedowntime`` …) as attributes."""
    blocks: list[dict[str, str]] = []
    block: dict[str, str] | None = None
    for line in path.read_text(errors="replace").splitlines():
        stripped = line.strip()
        if stripped == f"{kind} {{":
            block = {}
        elif stripped == "}" and block is not None:
            blocks.append(block)
            block = None
        elif block is not None:
            key, _, value = stripped.partition("=")
            block[key] = value
    return blocks


def engine_processes(engine: NagiosSandbox) -> list[int]:
    """The engine's main process and its children (Nagios 4 forks its check workers and a command-file worker,
    each in a process group of its own, so a signal to the main group would miss them)."""
    assert engine.pid is not None, "the engine is not running"
    return processes_of(engine.pid)


def processes_of(pid: int) -> list[int]:
    """``pid`` and its children, read from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return [pid, *children]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@contextmanager
def frozen(engine: NagiosSandbox) -> Iterator[list[int]]:
    """The engine stopped with SIGSTOP, all its processes (alive, its pipe open, reading nothing), then resumed."""
    pids = engine_processes(engine)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: all(_state(pid) == "T" for pid in pids), what="the engine's processes to stop")
        yield pids
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
