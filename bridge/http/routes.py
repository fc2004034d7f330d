"""Every URL the bridge answers: its own (health, metrics, OpenAPI, freshness), then each dialect's, each view
wrapped to answer in its caller's dialect, then the last resorts (405 with Allow, 404)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from bridge.http import freshness, health, openapi, status
from bridge.http.dialects import Dialect, Route, answered, dialect_for, method_not_allowed, not_found
from bridge.http.metrics import Metrics

# The bridge's own routes; they answer in the shape of the dialect that claims their path, else the first one's.
OWN_ROUTES = (
    Route("GET", "/health", health.health_view),
    Route("GET", "/metrics", health.metrics_view),
    Route("GET", "/api/openapi.json", openapi.openapi_view),
    Route("GET", "/api/freshness", freshness.freshness_view),
)


def setup_routes(app: web.Application, metrics: Metrics, dialects: Sequence[Dialect]) -> None:
    router = app.router

    def add(route: Route, dialect: Dialect) -> None:
        handler = answered(route.view, dialect, metrics)
        if route.method == "GET":
            router.add_get(route.path, handler)  # and HEAD
        else:
            router.add_route(route.method, route.path, handler)

    for route in OWN_ROUTES:
        add(route, dialect_for(route.path, dialects))
    for dialect in dialects:
        for route in dialect.routes:
            add(route, dialect)
    status.setup_status(app, metrics)  # HTML, its own error pages
    # The last resorts, in the caller's dialect: another method on a known path is 405, anything else 404.
    for resource in list(router.resources()):
        assert isinstance(resource, web.Resource)
        allowed = [route.method for route in resource]
        path = resource.canonical
        resource.add_route("*", method_not_allowed(allowed, dialect_for(path, dialects), metrics))
    router.add_route("*", "/{tail:.*}", not_found(dialects, metrics))
