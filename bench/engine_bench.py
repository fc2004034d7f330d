"""End to end into a real Nagios 4 (Debian's nagios4-core, a throwaway instance): results/s until the engine has
the last of N, beside a raw writer into the same engine's pipe (the baseline: how fast Nagios itself reads).

Rows: the baseline; the bridge with the engine reading (POST /api/results, 1,000 a request, 4 clients); the same
with the engine stopped, accepted into the spool, then drained when the engine starts. The clock stops when the
engine's own log shows the last result (results of one pipe arrive in order).

    python bench/engine_bench.py [--results 50000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_port  # noqa: E402
from bridge.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary  # noqa: E402

HOSTS = [SandboxHost(f"bench-{h:03d}", tuple(SandboxService(f"svc-{s}") for s in range(10))) for h in range(100)]
AUTH = "Basic " + base64.b64encode(b"bench:bench").decode()


def results(count: int, tag: str) -> list[dict[str, object]]:
    return [{"host_name": f"bench-{n % 100:03d}", "service_description": f"svc-{n // 100 % 10}",
             "status_code": n % 3, "plugin_output": f"{tag} {n}"} for n in range(count)]


def wait_in_log(engine: NagiosSandbox, marker: str, timeout: float = 300) -> float:
    """When the engine's log first shows ``marker`` (polled from the end of the file)."""
    deadline = time.monotonic() + timeout
    position = 0
    while time.monotonic() < deadline:
        with engine.log_file.open(errors="replace") as handle:
            handle.seek(position)
            chunk = handle.read()
            position = max(0, handle.tell() - len(marker) - 200)
        if marker in chunk:
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"the engine never showed {marker!r}")


def send_batches(port: int, items: list[dict[str, object]], clients: int = 4) -> None:
    batches = [items[i:i + 1000] for i in range(0, len(items), 1000)]

    def client(mine: list[list[dict[str, object]]]) -> None:
        for batch in mine:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/results", method="POST",
                                             data=json.dumps(batch).encode(),
                                             headers={"Content-Type": "application/json", "Authorization": AUTH})
            with urllib.request.urlopen(request, timeout=120) as response:
                assert response.status == 200

    # Each client's batches go in order; the last batch (with the marker) is sent after all others finish.
    threads = [threading.Thread(target=client, args=(batches[:-1][k::clients],)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client([batches[-1]])


def start_bridge(engine: NagiosSandbox, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "bridge.toml"
    config.write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n[engine]\nkind = "nagios"\n'
                      f'command_file = "{engine.command_file}"\n[spool]\ndirectory = "{directory / "spool"}"\n'
                      '[log]\nlevel = "error"\n[[users]]\nname = "bench"\npassword = "bench"\n')
    process = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--config", str(config)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=50_000)
    args = parser.parse_args()
    if nagios_binary() is None:
        raise SystemExit("nagios4 is needed: apt-get install --no-install-recommends nagios4-core")
    count = max(1000, args.results // 1000 * 1000)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        directory = Path(tmp)
        engine = NagiosSandbox(directory / "nagios", HOSTS)
        engine.verify()
        engine.start()
        try:
            lines = [f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;{r['host_name']};{r['service_description']};"
                     f"{r['status_code']};{r['plugin_output']}\n".encode() for r in results(count, "raw")]
            fd = os.open(engine.command_file, os.O_WRONLY)  # a blocking writer: as fast as Nagios reads
            started = time.monotonic()
            for i in range(0, len(lines), 40):
                os.write(fd, b"".join(lines[i:i + 40]))
            os.close(fd)
            rows.append(("raw writer into the pipe (baseline)",
                         count / (wait_in_log(engine, f"raw {count - 1}") - started)))

            bridge, port = start_bridge(engine, directory / "a")
            try:
                started = time.monotonic()
                send_batches(port, results(count, "bridged"))
                rows.append(("bridge, engine reading", count / (wait_in_log(engine, f"bridged {count - 1}") - started)))
            finally:
                bridge.terminate()
                bridge.wait(30)

            engine.stop()
            bridge, port = start_bridge(engine, directory / "b")
            try:
                started = time.monotonic()
                send_batches(port, results(count, "spooled"))
                accepted = count / (time.monotonic() - started)
                engine.start()
                started = time.monotonic()
                drained = count / (wait_in_log(engine, f"spooled {count - 1}") - started)
                rows.append(("bridge, engine down: accepted into the spool", accepted))
                rows.append(("  ... then drained into the started engine", drained))
            finally:
                bridge.terminate()
                bridge.wait(30)
        finally:
            engine.stop()
    baseline = rows[0][1]
    print(f"{count:,} results into a real Nagios 4 (POST /api/results, 1,000 a request, 4 clients)")
    print(f"{'row':<48}{'results/s':>12}{'vs baseline':>13}")
    for label, rate in rows:
        print(f"{label:<48}{rate:>12,.0f}{rate / baseline:>12.0%}")


if __name__ == "__main__":
    main()
