"""``naemon-bridge systemd-unit``: the unit file for this installation, from the one template.

``systemd/naemon-bridge.service`` is this template rendered with the defaults (a test keeps them equal), so the
shipped file and what the command prints cannot drift apart.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from bridge.config.model import DEFAULT_CONFIG_PATH

DEFAULT_EXECUTABLE = "/usr/local/bin/naemon-bridge"
DEFAULT_USER, DEFAULT_GROUP = "naemon-bridge", "naemon"

UNIT_TEMPLATE = """\
[Unit]
Description=naemon-bridge: passive check results over HTTP into Naemon/Nagios
Documentation=file:///usr/share/doc/naemon-bridge/README.md
After=network-online.target naemon.service nagios4.service
Wants=network-online.target

[Service]
# READY=1 once listening and the engine's pipe is probed; STATUS= shows the engine and the spool
# (systemctl status); WATCHDOG=1 comes from the event loop, so a wedged bridge is restarted.
Type=notify
NotifyAccess=main
WatchdogSec=30
# A dedicated user in the group that may write the engine's command pipe (mode 0660): "naemon" for Naemon's
# packages, "www-data" for Debian's nagios4 (its /var/lib/nagios4 and rw/ belong to group www-data). Check with
# namei -l on the pipe. Print a unit for this installation: naemon-bridge systemd-unit --group GROUP
User={user}
Group={group}
ExecStartPre={executable} check-config --config {config}
ExecStart={executable} serve --config {config}
# SIGHUP re-reads the config (users, permissions, freshness rules, engine paths); a bad one keeps the old.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
# SIGTERM: requests in flight finish and queued lines reach the pipe or the spool before exit.
KillSignal=SIGTERM
# With [server] workers the main process stops its workers first, then delivers what is queued: SIGTERM goes to
# it alone, and only what is left at the timeout is killed.
KillMode=mixed
TimeoutStopSec=30
UMask=0027

NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
# The spool (spool.directory; create it first, see the README), and the engine's pipe (Naemon's and
# Debian nagios4's default folders).
ReadWritePaths=-/var/spool/naemon-bridge -/var/lib/naemon -/var/lib/nagios4/rw

[Install]
WantedBy=multi-user.target
"""

# Folders ProtectHome=yes hides from the service.
HIDDEN_HOMES = ("/home", "/root", "/run/user")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")


def systemd_word(text: str) -> str:
    """One argument of an Exec line, as systemd splits it: "%" and "$" doubled, quoted when it has spaces."""
    text = text.replace("%", "%%").replace("$", "$$")
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def this_executable() -> tuple[str, Path]:
    """How this installation's bridge is started, as an Exec line's words, and the program that runs: the console
    script that runs now (a venv's bin/naemon-bridge), else this interpreter with ``-m bridge``. No symlink is
    resolved: a venv's python must stay the venv's."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "naemon-bridge" and script.is_file() and os.access(script, os.X_OK):
        return systemd_word(str(script.absolute())), script.absolute()
    return f"{systemd_word(sys.executable)} -m bridge", Path(sys.executable)


def render_unit(*, executable: str = DEFAULT_EXECUTABLE, config: Path | str = DEFAULT_CONFIG_PATH,
                user: str = DEFAULT_USER, group: str = DEFAULT_GROUP) -> str:
    """The unit file; ``executable`` is already an Exec line's words (see ``systemd_word``)."""
    return UNIT_TEMPLATE.format(executable=executable, config=systemd_word(str(config)), user=user, group=group)
