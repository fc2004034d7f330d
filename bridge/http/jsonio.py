"""JSON in and out of HTTP for every view: orjson, the fastest well-kept codec, with the standard library as the
judge of anything orjson refuses, so the bridge accepts exactly the documents it always has.

orjson refuses a few things ``json`` takes (NaN, integers beyond 64 bits, lone surrogates, UTF-16 bodies). Those
are rare; re-reading them with ``json`` keeps them reaching the field checks, which name the field and say what is
wrong, instead of failing the whole body, and keeps ``json``'s error messages (line and column) for broken JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import orjson
from aiohttp import web


def loads(body: bytes) -> object:
    """The document in ``body``; raises ``json.JSONDecodeError`` or ``UnicodeDecodeError`` as ``json`` does."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def json_answer(data: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``data`` as an ``application/json`` response."""
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json")
