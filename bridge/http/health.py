"""``GET /health``: no auth and no secrets, for load balancers and admins. 200 when ok, 503 when degraded."""

from __future__ import annotations

from aiohttp import web

from bridge.http.jsonio import json_answer
from bridge.http.keys import DELIVERY, FRESHNESS, METRICS
from bridge.http.metrics import metrics_response

# A spool this full makes the bridge report itself degraded, so a balancer can steer traffic elsewhere.
DEGRADED_SPOOL_FILL = 0.9


async def health_view(request: web.Request) -> web.Response:
    health = request.app[DELIVERY].health()
    degraded = not health.engine_reachable or health.spool_fill > DEGRADED_SPOOL_FILL
    body = {
        "status": "degraded" if degraded else "ok",
        "engine": {"reachable": health.engine_reachable},
        "spool": {"results": health.spool_results, "bytes": health.spool_bytes,
                  "max_bytes": health.spool_max_bytes, "oldest_age_s": health.oldest_age_s},
        "freshness": request.app[FRESHNESS].counts(),  # stale objects are the engine's news, not the bridge's fault
    }
    return json_answer(body, status=503 if degraded else 200)


async def metrics_view(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus exposition, no auth (it carries no secrets)."""
    return metrics_response(request.app[METRICS])
