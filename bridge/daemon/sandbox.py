"""A throwaway Nagios 4 instance in a directory of its own.

Used by ``naemon-bridge demo`` (so a newcomer sees real state change) and by the end-to-end tests. It follows
the recipe in the spec's engine.md: every path lives under one directory, including the query socket (the
default path is shared between instances and would collide).
"""

from __future__ import annotations

import getpass
import grp
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

NAGIOS_BINARY = "nagios4"


@dataclass(frozen=True, slots=True)
class SandboxService:
    description: str
    variables: Mapping[str, str] = field(default_factory=dict)
    passive_checks_enabled: bool = True
    check_freshness: bool = False
    freshness_threshold: int = 0


@dataclass(frozen=True, slots=True)
class SandboxHost:
    name: str
    services: tuple[SandboxService, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    alias: str = ""
    notes: str = ""


def nagios_binary() -> str | None:
    """The Nagios 4 binary on this machine, if any (Debian installs it in /usr/sbin)."""
    return shutil.which(NAGIOS_BINARY) or shutil.which(NAGIOS_BINARY, path="/usr/sbin:/usr/local/sbin")


def _define(kind: str, attributes: Iterable[tuple[str, object]]) -> str:
    body = "".join(f"    {key:<31} {value}\n" for key, value in attributes)
    return f"define {kind} {{\n{body}}}\n"


def _flag(value: bool) -> int:
    return 1 if value else 0


def objects_config(hosts: Iterable[SandboxHost]) -> str:
    """Nagios object definitions for passive-only hosts and services."""
    parts = [
        _define("timeperiod", [("timeperiod_name", "24x7"), ("alias", "always")]
                + [(day, "00:00-24:00") for day in
                   ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")]),
        # A check_dummy that needs no plugins package: exit with $ARG1$, print $ARG2$.
        _define("command", [("command_name", "check_dummy"),
                            ("command_line", "/bin/sh -c 'echo \"$ARG2$\"; exit $ARG1$'")]),
        _define("command", [("command_name", "notify_nobody"), ("command_line", "/bin/true")]),
        _define("contact", [("contact_name", "nobody"), ("alias", "Nobody"),
                            ("host_notifications_enabled", 0), ("service_notifications_enabled", 0),
                            ("host_notification_period", "24x7"), ("service_notification_period", "24x7"),
                            ("host_notification_options", "n"), ("service_notification_options", "n"),
                            ("host_notification_commands", "notify_nobody"),
                            ("service_notification_commands", "notify_nobody")]),
    ]
    for host in hosts:
        parts.append(_define("host", [
            ("host_name", host.name), ("alias", host.alias or host.name), ("notes", host.notes or "none"),
            ("address", "127.0.0.1"), ("check_command", "check_dummy!0!passive"),
            ("active_checks_enabled", 0), ("passive_checks_enabled", 1), ("max_check_attempts", 1),
            ("check_period", "24x7"), ("notification_period", "24x7"), ("contacts", "nobody"),
            ("notifications_enabled", 0),
        ] + [(f"_{name}", value) for name, value in host.variables.items()]))
        for service in host.services:
            parts.append(_define("service", [
                ("host_name", host.name), ("service_description", service.description),
                ("check_command", "check_dummy!2!no result"),
                ("active_checks_enabled", 0), ("passive_checks_enabled", _flag(service.passive_checks_enabled)),
                ("check_freshness", _flag(service.check_freshness)),
                ("freshness_threshold", service.freshness_threshold),
                ("max_check_attempts", 1), ("check_interval", 5), ("retry_interval", 1),
                ("check_period", "24x7"), ("notification_period", "24x7"), ("contacts", "nobody"),
                ("notifications_enabled", 0),
            ] + [(f"_{name}", value) for name, value in service.variables.items()]))
    return "\n".join(parts)


class NagiosSandbox:
    """A Nagios 4 engine whose files all live below ``directory``; start() and stop() it."""

    def __init__(self, directory: Path, hosts: Iterable[SandboxHost], *, binary: str | None = None) -> None:
        self.directory = Path(directory)
        self.hosts = tuple(hosts)
        self.binary = binary or nagios_binary() or NAGIOS_BINARY
        self.command_file = self.directory / "rw" / "nagios.cmd"
        self.objects_cache = self.directory / "objects.cache"
        self.status_file = self.directory / "status.dat"
        self.log_file = self.directory / "nagios.log"
        self.main_config = self.directory / "nagios.cfg"
        self.pid_file = self.directory / "nagios.pid"
        self._write_config()

    def _write_config(self) -> None:
        d = self.directory
        for sub in ("rw", "checkresults", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "objects.cfg").write_text(objects_config(self.hosts))
        user = getpass.getuser()
        group = grp.getgrgid(os.getgid()).gr_name
        settings = {
            "log_file": d / "nagios.log",
            "cfg_file": d / "objects.cfg",
            "object_cache_file": self.objects_cache,
            "precached_object_file": d / "objects.precache",
            "status_file": self.status_file,
            "status_update_interval": 1,
            "nagios_user": user,
            "nagios_group": group,
            "check_external_commands": 1,
            "command_file": self.command_file,
            "lock_file": self.pid_file,
            "temp_file": d / "tmp" / "nagios.tmp",
            "temp_path": d / "tmp",
            "check_result_path": d / "checkresults",
            "check_result_reaper_frequency": 1,
            "use_syslog": 0,
            "log_passive_checks": 1,
            "log_external_commands": 1,
            "retain_state_information": 0,
            "state_retention_file": d / "retention.dat",
            "interval_length": 1,
            "check_for_updates": 0,
            "enable_notifications": 0,
            "accept_passive_service_checks": 1,
            "accept_passive_host_checks": 1,
            "query_socket": d / "nagios.qh",
            "illegal_macro_output_chars": "`~$&|'\"<>",
        }
        self.main_config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))

    def verify(self) -> str:
        """Run the engine's own config check; raises with its output when the config is bad."""
        done = subprocess.run([self.binary, "-v", str(self.main_config)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nagios4 -v failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self, timeout: float = 30.0) -> None:
        """Start the engine as a daemon; return once it reads its command pipe and has written status.dat."""
        done = subprocess.run([self.binary, "-d", str(self.main_config)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nagios4 -d failed:\n{done.stdout}{done.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running and self.status_file.exists() and self.command_file.exists() and self._pipe_read():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nagios4 did not come up within {timeout} s; see {self.log_file}")

    def _pipe_read(self) -> bool:
        try:
            fd = os.open(self.command_file, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return False
        os.close(fd)
        return True

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def log_lines(self) -> list[str]:
        try:
            return self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
