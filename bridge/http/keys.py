"""The application's typed state keys, declared once. Views read ``request.app[KEY]``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bridge.config.model import LiveConfig
from bridge.core.freshness import FreshnessTable
from bridge.core.recent import RecentChanges
from bridge.core.types import Clock, CommandSink
from bridge.engine.delivery import Delivery
from bridge.engine.files import EngineFiles
from bridge.engine.monitor import FreshnessMonitor
from bridge.http.credentials import Authenticator
from bridge.http.dialects import Dialect
from bridge.http.metrics import Metrics
from bridge.http.sessions import SessionStore

CONFIG = web.AppKey("config", LiveConfig)
AUTH = web.AppKey("auth", Authenticator)
ENGINE_FILES = web.AppKey("engine_files", EngineFiles)
DELIVERY = web.AppKey("delivery", Delivery)
FRESHNESS = web.AppKey("freshness", FreshnessTable)
METRICS = web.AppKey("metrics", Metrics)
MONITOR = web.AppKey("monitor", FreshnessMonitor)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
DIALECTS: web.AppKey[tuple[Dialect, ...]] = web.AppKey("dialects")  # what this application speaks
HUB: web.AppKey[CommandSink] = web.AppKey("hub")  # only in a worker process: where its commands go
SESSIONS = web.AppKey("sessions", SessionStore)  # login sessions (bridge.http.sessions), any dialect's
RECENT = web.AppKey("recent", RecentChanges)  # flags and variables sent that status.dat may not show yet
CLUSTER: web.AppKey[Callable[[], dict[str, object]]] = web.AppKey("cluster")  # [cluster]: the role's status
