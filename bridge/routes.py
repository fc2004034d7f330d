"""Every URL the bridge answers, in one place, each view wrapped to answer in its API's dialect."""

from __future__ import annotations

from aiohttp import web

from bridge import api_alignak, api_freshness, api_op5, health, openapi
from bridge.dialects import View, answered, api_style, method_not_allowed, not_found
from bridge.metrics import Metrics


def setup_routes(app: web.Application, metrics: Metrics) -> None:
    router = app.router

    def add(method: str, path: str, view: View) -> None:
        handler = answered(view, api_style(path), metrics)
        if method == "GET":
            router.add_get(path, handler)  # and HEAD
        else:
            router.add_route(method, path, handler)

    add("GET", "/health", health.health_view)
    add("GET", "/metrics", health.metrics_view)
    add("GET", "/api/openapi.json", openapi.openapi_view)
    add("GET", "/api/command", api_op5.list_view)
    add("GET", "/api/command/{command}", api_op5.template_view)
    add("POST", "/api/command/{command}", api_op5.command_view)
    add("POST", "/api/results", api_op5.results_view)
    add("GET", "/api/freshness", api_freshness.freshness_view)
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        for path in (f"{prefix}/host", f"{prefix}/host/{{host_name}}"):
            add("PATCH", path, api_alignak.host_view)
            add("POST", path, api_alignak.host_view)
        add("GET", f"{prefix}/host/{{host_name}}", api_alignak.host_get_view)
        add("POST", f"{prefix}/command", api_alignak.command_view)
        add("POST", f"{prefix}/event", api_alignak.event_view)
    # The last resorts, in the caller's dialect: another method on a known path is 405, anything else 404.
    for resource in list(router.resources()):
        assert isinstance(resource, web.Resource)
        allowed = [route.method for route in resource]
        path = resource.canonical
        resource.add_route("*", method_not_allowed(allowed, api_style(path), metrics))
    router.add_route("*", "/{tail:.*}", not_found(metrics))
