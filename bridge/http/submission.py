"""The one path from validated commands to the engine, shared by every API adapter: admit (permissions, then
the engine's known objects), deliver (pipe or spool), and note check results in the freshness table."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from bridge.core import permissions
from bridge.core.commands import engine_lines
from bridge.core.errors import EngineRefused, UnknownObject
from bridge.core.values import Command
from bridge.http.credentials import Principal
from bridge.http.dialects import CURRENT_DIALECT
from bridge.http.keys import CONFIG, DELIVERY, ENGINE_FILES, FRESHNESS, HUB, METRICS


async def admit(app: web.Application, principal: Principal, commands: Sequence[Command]) -> None:
    """Raise unless the user may run every command and the engine has every object they name. Permissions come
    first, so a denied user learns nothing about which objects exist."""
    unknown = await unknown_objects(app, principal, commands)
    if unknown:
        raise unknown[min(unknown)]


async def unknown_objects(app: web.Application, principal: Principal,
                          commands: Sequence[Command]) -> dict[int, UnknownObject]:
    """Raise unless the user may run every command; then, by position, each command that names an object the
    engine does not have (none while its objects cache is not known), so a batch can name them all."""
    for command in commands:
        permissions.check(principal.name, principal.grants, command)
    objects = await app[ENGINE_FILES].objects()
    if objects is None:
        return {}
    return objects.unknown_among(commands)


async def submit_commands(app: web.Application, commands: Sequence[Command]) -> None:
    """Render the lines for the configured engine (all of them first: a line the engine cannot take refuses the
    request before anything is written), hand them to the delivery task, then note the check results.

    Raises EngineRefused when Naemon's query handler refused lines; the others were applied.

    In a worker process (``[server] workers``) the commands go to the hub, which does all of this."""
    hub = app.get(HUB)
    dialect = CURRENT_DIALECT.get()  # unset in the hub for its workers' commands: the worker notes them
    if hub is not None:
        await hub.submit(commands)
        if dialect:
            app[METRICS].note_accepted(dialect, len(commands))
        return
    engine = app[CONFIG].current.engine
    lines = engine_lines(commands, engine.kind, query_handler=engine.query_socket is not None)
    refused = await app[DELIVERY].submit(lines) if lines else {}
    applied = [command for index, command in enumerate(commands) if index not in refused]
    app[METRICS].accepted.inc(len(applied))
    if dialect:
        app[METRICS].note_accepted(dialect, len(applied))
    app[FRESHNESS].record_commands(applied)
    if refused:
        raise EngineRefused([f"the engine refused {commands[index].spec.name}: {reason}"
                             for index, reason in sorted(refused.items())])
