"""Who sent a request, as the refusal list and the login throttle name them: the client's address and the
configured user it came from (or tried to log in as). Never a password or a token."""

from __future__ import annotations

from aiohttp import hdrs, web

# The configured user a request authenticated as, or tried to log in as when that name is configured: set by
# ``bridge.http.auth.authenticate``, read when a refusal is noted.
USER_NAME = web.RequestKey("user_name", str)


def client_address(request: web.Request) -> str:
    """Who is calling, for the failed-login throttle. On TCP the peer; on the hub's Unix socket (``[server]
    workers``, which nobody but its workers can reach) the address the worker forwarded."""
    return request.remote or request.headers.get(hdrs.X_FORWARDED_FOR) or ""
