"""The gate before serving, decided once for ``serve`` and ``check-config``.

``load_config`` checks the file (syntax, types, keys, password hashes). ``check`` checks that config against the
machine, as the account the daemon runs as: what ``serve`` could not run with is a ``ConfigError`` naming the file
and the key; what works but surprises (nothing to log in with, engine files not there yet) is a ``Finding``.
``serve`` calls ``check`` once it has become ``server.user``; ``check-config`` calls ``check_as_server_user``,
which does the same checks as that account when it can.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import pwd
import socket
from dataclasses import dataclass
from pathlib import Path

from bridge.config.model import Config, ConfigError, LogConfig

SYSLOG_SOCKET = "/dev/log"


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the operator should hear at start, which does not stop the bridge."""

    level: int  # logging.WARNING or logging.INFO
    text: str


def _account() -> str:
    try:
        return f"user {pwd.getpwuid(os.geteuid()).pw_name!r}"
    except KeyError:
        return f"uid {os.geteuid()}"


def _not_writable(folder: Path) -> str:
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return f"{folder} is on a read-only file system (under systemd's ProtectSystem=strict, list it in " \
               "ReadWritePaths=)"
    return f"{_account()} may not write in {folder}"


def _existing_ancestor(path: Path) -> Path:
    """The nearest of ``path`` and its parents that exists (as anything: a file stops the walk)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_folder(config: Config, key: str, folder: Path) -> None:
    """``folder`` exists and this account may read and write in it, or it can be created."""
    found = _existing_ancestor(folder)
    if not found.is_dir():
        raise ConfigError(config.source, key, f"{folder} cannot be created: {found} is a file, not a folder")
    if found == folder:
        if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
            raise ConfigError(config.source, key, f"{folder} cannot be written: {_not_writable(folder)}")
    elif not os.access(found, os.W_OK | os.X_OK):
        raise ConfigError(config.source, key, f"{folder} cannot be created: {_not_writable(found)}")


def _check_log(config: Config, log: LogConfig) -> None:
    if log.target == "file" and log.file is not None:
        folder = log.file.parent
        if not folder.is_dir():
            raise ConfigError(config.source, "log.file", f"{log.file}: its folder {folder} does not exist")
        if log.file.exists():
            if log.file.is_dir():
                raise ConfigError(config.source, "log.file", f"{log.file} is a folder, not a file")
            if not os.access(log.file, os.W_OK):
                raise ConfigError(config.source, "log.file", f"{log.file} cannot be written: {_account()} may "
                                                             "not write it")
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(config.source, "log.file", f"{log.file} cannot be created: {_not_writable(folder)}")
    elif log.target == "syslog":
        # Python's syslog handler drops every record while nobody listens on /dev/log: refuse instead.
        problem = None
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_UNIX, kind) as probe:
                try:
                    probe.connect(SYSLOG_SOCKET)
                    break
                except OSError as exc:
                    problem = exc.strerror or str(exc)
        else:
            why = "" if config.log.target == "syslog" else ' (serve --daemon logs to syslog when log.target is ' \
                                                           '"stderr")'
            raise ConfigError(config.source, "log.target",
                              f"syslog{why}, but no syslog daemon listens on {SYSLOG_SOCKET} ({problem}): start one, "
                              'or set target = "file" and file = "/var/log/naemon-bridge.log"')


def _accounts(config: Config) -> None:
    server = config.server
    try:
        if server.user is not None:
            pwd.getpwnam(server.user)
    except KeyError:
        raise ConfigError(config.source, "server.user", f"no such user {server.user!r}") from None
    try:
        if server.group is not None:
            grp.getgrnam(server.group)
    except KeyError:
        raise ConfigError(config.source, "server.group", f"no such group {server.group!r}") from None


def check(config: Config, log: LogConfig | None = None) -> list[Finding]:
    """Refuse (``ConfigError``) what ``serve`` cannot run with, as this process's account; return the rest.
    ``log`` is the logging actually used, when it differs from ``config.log`` (``--daemon``)."""
    _accounts(config)
    _check_folder(config, "spool.directory", config.spool.directory)
    _check_log(config, log or config.log)
    findings: list[Finding] = []
    if not config.users:
        findings.append(Finding(logging.WARNING, f"no [[users]] in {config.source}: every request will be refused "
                                                 "(401)"))
    for user in config.users:
        if user.password is not None:
            findings.append(Finding(logging.WARNING, f"user '{user.name}' has a plaintext password in "
                                                     f"{config.source}; prefer password_hash "
                                                     "(naemon-bridge hash-password)"))
    if config.cluster is not None and config.cluster.role == "edge":
        # An edge writes no pipe and reads no engine files: JetStream and the sinks' objects stand in for them.
        servers = ", ".join(config.cluster.servers)
        findings.append(Finding(logging.INFO, f"[cluster] edge: results go to JetStream ({servers}, stream "
                                              f"{config.cluster.stream}); names are checked against the objects "
                                              "the sinks publish; of [engine], only kind applies"))
        return findings
    engine = config.engine
    pipe_key, pipe = ("engine.query_socket", engine.query_socket) if engine.query_socket is not None else \
        ("engine.command_file", engine.command_file)
    if not os.path.lexists(pipe):
        findings.append(Finding(logging.WARNING, f"{pipe_key} {pipe} does not exist (yet): results are spooled "
                                                 "until the engine creates it"))
    if engine.objects_cache is None:
        findings.append(Finding(logging.INFO, "engine.objects_cache is not set: host and service names are not "
                                              "checked before writing"))
    elif not engine.objects_cache.exists():
        findings.append(Finding(logging.WARNING, f"engine.objects_cache {engine.objects_cache} does not exist "
                                                 "(yet): names are not checked until the engine writes it"))
    if engine.status_file is not None and not engine.status_file.exists():
        findings.append(Finding(logging.WARNING, f"engine.status_file {engine.status_file} does not exist (yet)"))
    return findings


def check_as_server_user(config: Config) -> list[Finding]:
    """``check`` as the account ``serve`` runs as: a root ``check-config`` with ``server.user``/``group`` forks a
    child that becomes them, as ``serve`` does after binding, so a folder only root may write is refused."""
    server = config.server
    if server.user is None and server.group is None:
        return check(config)
    _accounts(config)
    if os.getuid() != 0:
        return [Finding(logging.WARNING, f"server.user/server.group are set: serve must start as root to become "
                                         f"them; checked as {_account()}"), *check(config)]
    from bridge.daemon.daemonize import drop_privileges

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the server's account, check, report, and leave without cleanup
        try:
            os.close(read_end)
            drop_privileges(server.user, server.group)
            report: dict[str, object] = {"findings": [[f.level, f.text] for f in check(config)]}
        except ConfigError as exc:
            report = {"error": [exc.key, exc.reason]}
        except (Exception, SystemExit) as exc:  # whatever it was, the parent must hear it
            report = {"error": ["", f"checking as {server.user or server.group}: {exc}"]}
        with os.fdopen(write_end, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as incoming:
        text = incoming.read()
    os.waitpid(pid, 0)
    result = json.loads(text or '{"error": ["", "the check as server.user died"]}')
    if "error" in result:
        raise ConfigError(config.source, *result["error"])
    return [Finding(level, message) for level, message in result["findings"]]
