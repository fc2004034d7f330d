"""Authenticating a request: its Authorization header and its client's address, against the configured users
(``bridge.http.credentials``)."""

from __future__ import annotations

from aiohttp import web

from bridge.core.errors import NotAuthenticated, Throttled
from bridge.http.credentials import Principal
from bridge.http.keys import AUTH
from bridge.http.peer import USER_NAME, client_address

__all__ = ["authenticate", "client_address"]


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization")
    auth = request.app[AUTH]
    try:
        principal = await auth.authenticate(header, client_address(request))
    except (NotAuthenticated, Throttled):
        name = auth.configured_login(header)
        if name is not None:  # for the status page's refusal list: a configured name, never a token
            request[USER_NAME] = name
        raise
    request[USER_NAME] = principal.name
    return principal
