"""Live reload (SIGHUP, ``systemctl reload``): re-read the config and apply it to the running parts.

Users, permissions, login limits, engine paths and kind, spool limits and fsync policy, freshness settings,
Alignak options and the log level apply at once; nothing queued or in flight is touched. A config that does not
parse keeps the running one, and the log names the file and the key. Settings that need a new process (the
listening socket, TLS, the spool's folder) are named in the log as needing a restart.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import fields
from pathlib import Path

from aiohttp import web

from bridge.config.model import Config, ConfigError, load_config
from bridge.http.keys import AUTH, CONFIG, DELIVERY, ENGINE_FILES, MONITOR

log = logging.getLogger("naemon_bridge")


# ServerConfig's fields that the config file spells otherwise: both come from server.listen.
_SERVER_KEYS = {"host": "listen", "port": "listen"}
_LIVE_SERVER_KEYS = frozenset({"body_timeout"})  # read by each request (bridge.http.bodies)


def needs_restart(old: Config, new: Config) -> list[str]:
    """The changed keys that only a restart applies, as the config file spells them."""
    changed = list(dict.fromkeys(f"server.{_SERVER_KEYS.get(f.name, f.name)}" for f in fields(old.server)
                                 if getattr(old.server, f.name) != getattr(new.server, f.name)
                                 and f.name not in _LIVE_SERVER_KEYS))
    if old.spool.directory != new.spool.directory:
        changed.append("spool.directory")
    # The transport, and how lines are written, are chosen at start.
    if (old.engine.query_socket is None) != (new.engine.query_socket is None):
        changed.append("engine.query_socket")
    if old.engine.query_connections != new.engine.query_connections:
        changed.append("engine.query_connections")
    # The NSCA listener keeps its socket and settings (its user's grants are read live).
    changed += [f"nsca.{f.name}" for f in fields(old.nsca) if getattr(old.nsca, f.name) != getattr(new.nsca, f.name)]
    if old.cluster is None or new.cluster is None:  # the role, its connection and its stream are made at start
        changed += ["cluster"] if old.cluster != new.cluster else []
    else:
        changed += [f"cluster.{f.name}" for f in fields(old.cluster)
                    if getattr(old.cluster, f.name) != getattr(new.cluster, f.name)]
    return changed


def apply_request_side(app: web.Application, new: Config) -> None:
    """What every process answering HTTP applies (a worker of ``[server] workers`` applies only this)."""
    app[AUTH].update(new.users, new.auth)
    app[ENGINE_FILES].update(new.engine.objects_cache, new.engine.status_file)
    logging.getLogger().setLevel(new.log.level.upper())
    app[CONFIG].current = new


def apply_config(app: web.Application, new: Config) -> list[str]:
    """Apply ``new`` to the running bridge; returns the changed keys that need a restart."""
    old = app[CONFIG].current
    delivery = app[DELIVERY]
    # The transport chosen at start follows its own path: the query socket, or the command file.
    target = new.engine.query_socket if old.engine.query_socket is not None else new.engine.command_file
    if target is not None:
        delivery.transport.retarget(target)
    delivery.configure(max_spool_bytes=new.spool.max_bytes, fsync=new.spool.fsync,
                       fsync_interval=new.spool.fsync_interval, busy_wait=new.engine.busy_wait)
    app[MONITOR].update(new.freshness, new.engine)
    apply_request_side(app, new)
    return needs_restart(old, new)


async def reload_config(app: web.Application, path: Path | str) -> bool:
    try:
        new = await asyncio.to_thread(load_config, path)
    except ConfigError as exc:
        log.error("reload failed, the running config stays in force: %s", exc)
        return False
    for key in apply_config(app, new):
        log.warning("reload: %s changed in %s; restart naemon-bridge to apply it", key, path)
    log.info("reloaded %s: %d users, engine %s (%s)", path, len(new.users), new.engine.kind,
             new.engine.command_file)
    return True
