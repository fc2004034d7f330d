"""The application factory: ``serve``, ``demo`` and the tests all build the bridge through ``make_app``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from bridge import api_alignak, api_op5
from bridge.appkeys import AUTH, CLOCK, CONFIG, DELIVERY, ENGINE_FILES
from bridge.auth import Authenticator
from bridge.config import Config
from bridge.delivery import CommandPipe, Delivery
from bridge.middlewares import error_middleware
from bridge.objects import EngineFiles
from bridge.routes import api_style, setup_routes
from bridge.spool import Spool
from bridge.types import Clock

log = logging.getLogger("naemon_bridge")


def make_delivery(config: Config, clock: Clock = time.time) -> Delivery:
    spool = Spool(config.spool.directory, fsync=config.spool.fsync, clock=clock)
    return Delivery(CommandPipe(config.engine.command_file), spool, max_spool_bytes=config.spool.max_bytes,
                    fsync_interval=config.spool.fsync_interval, clock=clock)


def make_app(config: Config, *, clock: Clock = time.time) -> web.Application:
    """The bridge as an aiohttp application: ``serve``, ``demo`` and the tests all build it here."""
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[error_middleware({"op5": api_op5.render_error, "alignak": api_alignak.render_error},
                                      api_style)],
    )
    app[CONFIG] = config
    app[AUTH] = Authenticator(config.users, config.auth)
    app[ENGINE_FILES] = EngineFiles(config.engine.objects_cache, config.engine.status_file)
    app[CLOCK] = clock
    delivery = make_delivery(config, clock)
    app[DELIVERY] = delivery

    async def delivery_context(_: web.Application) -> AsyncIterator[None]:
        await delivery.start()
        yield
        await delivery.stop(timeout=config.server.shutdown_timeout)

    app.cleanup_ctx.append(delivery_context)
    setup_routes(app)
    return app
