"""The application's typed state keys, declared once. Views read ``request.app[KEY]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bridge.auth import Authenticator
from bridge.config import LiveConfig
from bridge.delivery import Delivery
from bridge.freshness import FreshnessTable
from bridge.metrics import Metrics
from bridge.monitor import FreshnessMonitor
from bridge.objects import EngineFiles
from bridge.types import Clock

if TYPE_CHECKING:
    from bridge.workers import HubClient

CONFIG = web.AppKey("config", LiveConfig)
AUTH = web.AppKey("auth", Authenticator)
ENGINE_FILES = web.AppKey("engine_files", EngineFiles)
DELIVERY = web.AppKey("delivery", Delivery)
FRESHNESS = web.AppKey("freshness", FreshnessTable)
METRICS = web.AppKey("metrics", Metrics)
MONITOR = web.AppKey("monitor", FreshnessMonitor)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
HUB: web.AppKey[HubClient] = web.AppKey("hub")  # only in a worker process: where its commands go
