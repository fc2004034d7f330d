"""systemd's notify protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1, STOPPING=1 as datagrams to
$NOTIFY_SOCKET. A few lines of the protocol rather than a dependency; silent when not run by systemd."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("naemon_bridge.systemd")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract socket: its first byte is NUL.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 2 / 1_000_000  # ping at half the timeout, as sd_notify advises
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *fields: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # systemd gone or the socket full: nothing to do but say so
            log.warning("cannot notify systemd at %s: %s", self._address.replace("\0", "@"), exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self, status: str) -> None:
        self.notify("WATCHDOG=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
