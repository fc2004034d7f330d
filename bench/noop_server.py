"""The baseline: a do-nothing aiohttp JSON handler (reads the body as JSON, answers op5's success JSON)."""

from __future__ import annotations

import sys

from aiohttp import web


async def handler(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"result": "Successfully submitted PROCESS_SERVICE_CHECK_RESULT"})


app = web.Application()
app.router.add_post("/{tail:.*}", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *_: None)
