"""The one path from validated commands to the engine, shared by every API adapter: admit (permissions, then
the engine's known objects), deliver (pipe or spool), and note check results in the freshness table."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from bridge import permissions
from bridge.appkeys import CONFIG, DELIVERY, ENGINE_FILES, FRESHNESS, METRICS
from bridge.auth import Principal
from bridge.commands import command_line
from bridge.values import Command


async def admit(app: web.Application, principal: Principal, commands: Sequence[Command]) -> None:
    """Raise unless the user may run every command and the engine has every object they name. Permissions come
    first, so a denied user learns nothing about which objects exist."""
    for command in commands:
        permissions.check(principal.name, principal.grants, command)
    objects = await app[ENGINE_FILES].objects()
    if objects is not None:
        for command in commands:
            objects.check(command)


async def submit_commands(app: web.Application, commands: Sequence[Command]) -> None:
    """Render the lines for the configured engine (all of them first: a line the engine cannot take refuses the
    request before anything is written), hand them to the delivery task, then note the check results."""
    engine = app[CONFIG].current.engine.kind
    lines = [command_line(command, engine).encode() for command in commands]
    if lines:
        await app[DELIVERY].submit(lines)
    app[METRICS].accepted.inc(len(lines))
    app[FRESHNESS].record_commands(commands)
