"""Classic daemon mode: a locked pidfile checked before detaching, python-daemon's DaemonContext, the listening
socket bound before privileges are dropped (``[server] user`` / ``group``)."""

from __future__ import annotations

import grp
import os
import pwd
import socket
from pathlib import Path

import daemon
from daemon.pidfile import TimeoutPIDLockFile

from bridge.config.model import ServerConfig


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def claim_pidfile(path: Path) -> TimeoutPIDLockFile:
    """The pidfile lock, refused with a clear message while another instance runs; a stale one is removed."""
    lock = TimeoutPIDLockFile(str(path), acquire_timeout=0)
    if lock.is_locked():
        pid = lock.read_pid()
        if pid is not None and pid != os.getpid() and _alive(pid):
            raise SystemExit(f"naemon-bridge: already running as pid {pid} (pidfile {path})")
        lock.break_lock()  # left behind by a process that is gone
    if not path.parent.is_dir():
        raise SystemExit(f"naemon-bridge: the pidfile's folder {path.parent} does not exist")
    return lock


def bind(server: ServerConfig) -> socket.socket:
    """The listening socket, bound before detaching and before dropping privileges (a port below 1024 works)."""
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    try:
        return socket.create_server((server.host, server.port), family=family, backlog=128)
    except OSError as exc:
        raise SystemExit(f"naemon-bridge: cannot listen on {server.listen}: {exc.strerror or exc}") from None


def bind_workers(server: ServerConfig) -> list[socket.socket]:
    """One listening socket per worker on the same port (SO_REUSEPORT: the kernel spreads connections)."""
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    sockets: list[socket.socket] = []
    port = server.port
    try:
        for _ in range(server.workers):
            sock = socket.create_server((server.host, port), family=family, backlog=128, reuse_port=True)
            port = sock.getsockname()[1]  # port 0: every worker on the port the first one got
            sockets.append(sock)
    except OSError as exc:
        raise SystemExit(f"naemon-bridge: cannot listen on {server.listen}: {exc.strerror or exc}") from None
    return sockets


def drop_privileges(user: str | None, group: str | None) -> None:
    """Become ``user`` (and ``group``, else the user's own) once the socket is bound."""
    if user is None and group is None:
        return
    if os.getuid() != 0:
        raise SystemExit("naemon-bridge: server.user / server.group need the bridge to start as root")
    try:
        account = pwd.getpwnam(user) if user else None
        gid = grp.getgrnam(group).gr_gid if group else account.pw_gid if account else os.getgid()
    except KeyError as exc:
        raise SystemExit(f"naemon-bridge: no such user or group: {exc.args[0]}") from None
    if account is not None:
        os.initgroups(account.pw_name, gid)
    else:
        os.setgroups([gid])
    os.setgid(gid)
    if account is not None:
        os.setuid(account.pw_uid)


def daemon_context(lock: TimeoutPIDLockFile, preserve: list[int]) -> daemon.DaemonContext:
    """Detach: fork, new session, working directory /, umask 027, standard streams to /dev/null, the pidfile
    written (and removed at exit) by the detached process; ``preserve`` keeps the listening socket open."""
    return daemon.DaemonContext(pidfile=lock, umask=0o027, working_directory="/", files_preserve=preserve,
                                detach_process=True, signal_map={})
