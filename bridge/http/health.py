"""``GET /health``: no auth and no secrets, for load balancers and admins. 200 when ok, 503 when degraded, with
the reasons in the body."""

from __future__ import annotations

from aiohttp import web

from bridge.config.model import HealthConfig
from bridge.engine.delivery import DeliveryHealth
from bridge.http.jsonio import json_answer
from bridge.http.keys import CLUSTER, CONFIG, DELIVERY, FRESHNESS, METRICS
from bridge.http.metrics import metrics_response

# A spool this full makes the bridge report itself degraded, so a balancer can steer traffic elsewhere.
DEGRADED_SPOOL_FILL = 0.9


def degraded_reasons(health: DeliveryHealth, limits: HealthConfig) -> list[str]:
    """Why the bridge is degraded, one sentence each; empty when it is ok."""
    reasons = []
    if not health.engine_reachable:
        reasons.append(f"the engine does not take commands: {health.engine_problem or 'not yet reached'}")
    elif health.stalled_s is not None and health.stalled_s >= limits.stalled_after:
        # The engine holds its pipe open but reads nothing (stopped, hung): only the silence shows it.
        waiting = f"{health.spool_results} results wait" if health.spool_results else "results wait"
        reasons.append(f"the engine has taken nothing for {health.stalled_s:.1f} s while {waiting} "
                       f"(health.stalled_after = {limits.stalled_after:g} s)")
    if health.oldest_age_s is not None and health.oldest_age_s >= limits.max_spool_age:
        reasons.append(f"the oldest spooled result is {health.oldest_age_s:.1f} s old "
                       f"(health.max_spool_age = {limits.max_spool_age:g} s)")
    if health.spool_fill > DEGRADED_SPOOL_FILL:
        reasons.append(f"the spool is {health.spool_fill:.0%} full (of {health.spool_max_bytes} bytes)")
    return reasons


async def health_view(request: web.Request) -> web.Response:
    health = request.app[DELIVERY].health()
    reasons = degraded_reasons(health, request.app[CONFIG].current.health)
    body: dict[str, object] = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "engine": {"reachable": health.engine_reachable, "stalled_s": health.stalled_s},
        "spool": {"results": health.spool_results, "bytes": health.spool_bytes,
                  "max_bytes": health.spool_max_bytes, "oldest_age_s": health.oldest_age_s},
        "freshness": request.app[FRESHNESS].counts(),  # stale objects are the engine's news, not the bridge's fault
    }
    if CLUSTER in request.app:  # an edge's "engine" is JetStream; a sink says how far behind the stream it is
        body["cluster"] = request.app[CLUSTER]()
    return json_answer(body, status=503 if reasons else 200)


async def metrics_view(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus exposition, no auth (it carries no secrets)."""
    return metrics_response(request.app[METRICS])
