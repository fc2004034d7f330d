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
    """``?stale=1`` lists only stale objects, ``?host=NAME`` one host's; counts are for every object the user may
    see. A user limited by ``hosts``/``services`` sees only the objects those grants let it submit results for,
    and a host it may not touch answers as one the table does not have: no objects."""
    principal = await authenticate(request)
    unknown = sorted(set(request.query) - {"stale", "host"})
    if unknown:  # as a command's parameters: a typo (?stael=1) is named, not silently ignored
        raise InvalidInput(unknown[0], "is not a parameter of /api/freshness (it takes stale and host)")
    stale = request.query.get("stale", "").lower()
    if stale not in _TRUE + _FALSE:
        raise InvalidInput("stale", f"must be 1 or 0, not {request.query['stale']!r}")
    table = request.app[FRESHNESS]
    stale_only, host = stale in _TRUE, request.query.get("host")
    grants = principal.grants
    if grants.limited:
        visible = [row for row in table.rows() if grants.may_touch(row.host_name, row.service_description)]
        stale_count = sum(row.stale for row in visible)
        counts = {"fresh": len(visible) - stale_count, "stale": stale_count}
        rows = [row for row in visible if (row.stale or not stale_only) and (host is None or row.host_name == host)]
    else:
        rows, counts = list(table.rows(stale_only=stale_only, host=host)), table.counts()
    objects = [{key: value for key, value in asdict(row).items()} for row in rows]
    return json_answer({"objects": objects, "counts": counts})
