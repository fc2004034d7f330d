"""Authenticating a request: its Authorization header and its client's address, against the configured users
(``bridge.http.credentials``)."""

from __future__ import annotations

from aiohttp import hdrs, web

from bridge.http.credentials import Principal
from bridge.http.keys import AUTH


async def authenticate(request: web.Request) -> Principal:
    return await request.app[AUTH].authenticate(request.headers.get("Authorization"), client_address(request))


def client_address(request: web.Request) -> str:
    """Who is calling, for the failed-login throttle. On TCP the peer; on the hub's Unix socket (``[server]
    workers``, which nobody but its workers can reach) the address the worker forwarded."""
    return request.remote or request.headers.get(hdrs.X_FORWARDED_FOR) or ""
