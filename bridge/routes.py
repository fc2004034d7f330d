"""Every URL the bridge answers, in one place."""

from __future__ import annotations

from aiohttp import web

from bridge import api_alignak, api_freshness, api_op5, health, openapi


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/health", health.health_view)
    app.router.add_get("/metrics", health.metrics_view)
    app.router.add_get("/api/openapi.json", openapi.openapi_view)
    app.router.add_get("/api/command", api_op5.list_view)
    app.router.add_get("/api/command/{command}", api_op5.template_view)
    app.router.add_post("/api/command/{command}", api_op5.command_view)
    app.router.add_post("/api/results", api_op5.results_view)
    app.router.add_get("/api/freshness", api_freshness.freshness_view)
    for prefix in ("", "/ws"):  # Alignak WS up to 1.6 served at the root, later under /ws
        for path in (f"{prefix}/host", f"{prefix}/host/{{host_name}}"):
            app.router.add_route("PATCH", path, api_alignak.host_view)
            app.router.add_route("POST", path, api_alignak.host_view)
        app.router.add_get(f"{prefix}/host/{{host_name}}", api_alignak.host_get_view)
        app.router.add_post(f"{prefix}/command", api_alignak.command_view)
        app.router.add_post(f"{prefix}/event", api_alignak.event_view)


def api_style(path: str) -> str:
    """Which dialect answers errors for ``path``: Alignak's for its endpoints, op5's JSON for the rest."""
    alignak = ("/host", "/command", "/event")
    return "alignak" if path in alignak or path.startswith(("/host/", "/ws/")) else "op5"
