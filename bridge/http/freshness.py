"""``GET /api/freshness``: when each host and service last reported, against its threshold (authenticated)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from bridge.core.errors import InvalidInput
from bridge.http.auth import authenticate
from bridge.http.jsonio import json_answer
from bridge.http.keys import FRESHNESS

_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


async def freshness_view(request: web.Request) -> web.Response:
    """``?stale=1`` lists only stale objects, ``?host=NAME`` one host's; counts are always for the whole table."""
    await authenticate(request)
    stale = request.query.get("stale", "").lower()
    if stale not in _TRUE + _FALSE:
        raise InvalidInput("stale", f"must be 1 or 0, not {request.query['stale']!r}")
    table = request.app[FRESHNESS]
    rows = table.rows(stale_only=stale in _TRUE, host=request.query.get("host"))
    objects = [{key: value for key, value in asdict(row).items()} for row in rows]
    return json_answer({"objects": objects, "counts": table.counts()})
