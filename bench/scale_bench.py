"""A million objects: the objects cache and the freshness table at that size, in the daemon's own code.

Two rows. In a child process (beside an empty child, the baseline for its RSS): an objects.cache in Nagios 4's own
block layout with that many services (one host per ten), read and parsed as the daemon reads it, every object
tracked by the freshness table (``apply_engine``, as at start), then every object falling due at once and swept
in the monitor's chunks — the start-up time, the RSS, and the longest stall a request could wait behind one chunk.
Then the daemon itself (``python -m bridge serve``) after that many distinct objects have reported through
``POST /api/results``: its RSS.

    python bench/scale_bench.py [--objects 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import Bridge, Row, batch_bodies, cat_reader, post_batches, print_table, rss_mib, workload  # noqa: E402
from bridge.core.freshness import FreshnessTable  # noqa: E402
from bridge.core.objects import parse_objects_cache  # noqa: E402
from bridge.engine.files import keep_out_of_full_collections  # noqa: E402
from bridge.engine.monitor import SWEEP_CHUNK  # noqa: E402

# Nagios 4's objects.cache blocks, as a throwaway Nagios 4 wrote them (bridge.daemon.sandbox), names replaced.
HOST_BLOCK = ("define host {{\n\thost_name\t{host}\n\talias\t{host}\n\taddress\t127.0.0.1\n\tcheck_period\t24x7\n"
              "\tcheck_command\tcheck_dummy!0!passive\n\tcontacts\tnobody\n\tnotification_period\t24x7\n"
              "\tinitial_state\to\n\timportance\t0\n\tcheck_interval\t5.000000\n\tretry_interval\t1.000000\n"
              "\tmax_check_attempts\t1\n\tactive_checks_enabled\t0\n\tpassive_checks_enabled\t1\n\tobsess\t1\n"
              "\tevent_handler_enabled\t1\n\tlow_flap_threshold\t0.000000\n\thigh_flap_threshold\t0.000000\n"
              "\tflap_detection_enabled\t1\n\tflap_detection_options\ta\n\tfreshness_threshold\t0\n"
              "\tcheck_freshness\t0\n\tnotification_options\ta\n\tnotifications_enabled\t0\n"
              "\tnotification_interval\t30.000000\n\tfirst_notification_delay\t0.000000\n\tstalking_options\tn\n"
              "\tprocess_perf_data\t1\n\tretain_status_information\t1\n\tretain_nonstatus_information\t1\n\t}}\n\n")
SERVICE_BLOCK = ("define service {{\n\thost_name\t{host}\n\tservice_description\t{service}\n\tcheck_period\t24x7\n"
                 "\tcheck_command\tcheck_dummy!2!no result\n\tcontacts\tnobody\n\tnotification_period\t24x7\n"
                 "\tinitial_state\to\n\timportance\t0\n\tcheck_interval\t5.000000\n\tretry_interval\t1.000000\n"
                 "\tmax_check_attempts\t1\n\tis_volatile\t0\n\tparallelize_check\t1\n\tactive_checks_enabled\t0\n"
                 "\tpassive_checks_enabled\t1\n\tobsess\t1\n\tevent_handler_enabled\t1\n"
                 "\tlow_flap_threshold\t0.000000\n\thigh_flap_threshold\t0.000000\n\tflap_detection_enabled\t1\n"
                 "\tflap_detection_options\ta\n\tfreshness_threshold\t0\n\tcheck_freshness\t0\n"
                 "\tnotification_options\ta\n\tnotifications_enabled\t0\n\tnotification_interval\t30.000000\n"
                 "\tfirst_notification_delay\t0.000000\n\tstalking_options\tn\n\tprocess_perf_data\t1\n"
                 "\tretain_status_information\t1\n\tretain_nonstatus_information\t1\n\t}}\n\n")


def write_cache(path: Path, services: int) -> None:
    with path.open("w") as handle:
        handle.write("########################################\n#       NAGIOS OBJECT CACHE FILE\n\n")
        for h in range(max(1, services // 10)):
            host = f"host-{h:06d}"
            handle.write(HOST_BLOCK.format(host=host) + "".join(
                SERVICE_BLOCK.format(host=host, service=f"svc-{s:02d}") for s in range(min(10, services))))


def measure(services: int, directory: Path) -> dict[str, float]:
    """In this process: the start-up work at ``services`` objects, its RSS, and the all-due sweep's stalls."""
    if services == 0:
        return {"rss_mib": rss_mib_self()}
    cache = directory / "objects.cache"
    write_cache(cache, services)
    now = [1_000_000.0]
    started = time.perf_counter()
    known = parse_objects_cache(cache.read_text(encoding="utf-8", errors="replace"))  # as WatchedFile reads it
    parsed = time.perf_counter()
    table = FreshnessTable(lambda: now[0], default_threshold=600, submit_stale=True)
    table.apply_engine(known, None)
    keep_out_of_full_collections()  # as the daemon does once the table follows a new objects cache
    tracked = time.perf_counter()
    rss = rss_mib_self()
    now[0] += 3600  # every object is due at once: the monitor sweeps in chunks and serves requests between them
    longest = 0.0
    swept = time.perf_counter()
    while True:
        chunk = time.perf_counter()
        table.sweep(limit=SWEEP_CHUNK)
        more = table.due()
        longest = max(longest, time.perf_counter() - chunk)
        if not more:
            break
    return {"objects": len(known.hosts) + len(known.services), "parse_s": parsed - started,
            "track_s": tracked - parsed, "rss_mib": rss, "peak_rss_mib": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, "sweep_s": time.perf_counter() - swept,
            "longest_stall_ms": longest * 1000}


def rss_mib_self() -> float:
    return rss_mib(os.getpid())


def child(services: int, directory: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", str(services), "--directory", str(directory)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def rows(directory: Path, objects: int) -> list[Row]:
    baseline = child(0, directory)
    scaled = child(objects, directory)
    startup = scaled["parse_s"] + scaled["track_s"]
    grown = scaled["rss_mib"] - baseline["rss_mib"]
    cache_row = Row(
        f"objects.cache + freshness table, {scaled['objects']:,.0f} objects",
        versus=f"start-up {startup:.1f} s, RSS {scaled['rss_mib']:.0f} MiB (+{grown:.0f} over an empty child), "
               f"all due: longest sweep stall {scaled['longest_stall_ms']:.0f} ms",
        figures={"services": objects, **scaled, "startup_s": startup, "baseline_rss_mib": baseline["rss_mib"]})
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    reader = cat_reader(fifo)
    bridge = Bridge(directory / "daemon", fifo)
    try:
        idle = bridge.rss_mib()
        post_batches(bridge.port, batch_bodies(workload(objects, "scale", hosts=max(1, objects // 10))), clients=2)
        loaded = bridge.rss_mib()
    finally:
        bridge.stop()
        reader.kill()
        reader.wait()
    daemon_row = Row(f"RSS after {objects:,} distinct objects reported",
                     versus=f"{loaded:.0f} MiB ({idle:.0f} MiB idle)",
                     figures={"objects": objects, "idle_rss_mib": idle, "rss_mib": loaded})
    return [cache_row, daemon_row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--directory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.directory)))
        return
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        table = rows(Path(tmp), args.objects)
    print_table(f"{args.objects:,} objects", table)


if __name__ == "__main__":
    main()
