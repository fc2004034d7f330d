"""JSON in and out of HTTP for every view: orjson, the fastest well-kept codec, with the standard library as the
judge of anything orjson refuses, so the bridge accepts exactly the documents it always has.

orjson refuses a few things ``json`` takes (NaN, integers beyond 64 bits, lone surrogates, UTF-16 bodies). Those
are rare; re-reading them with ``json`` keeps them reaching the field checks, which name the field and say what is
wrong, instead of failing the whole body, and keeps ``json``'s error messages (line and column) for broken JSON.

What neither reads is refused as broken JSON saying why: an integer longer than Python converts (4,300 digits),
and nesting deeper than ``MAX_DEPTH`` (no document of either API nests more than a handful of levels, and deeper
values would break every ``repr`` and error message that quotes them).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping

import orjson
from aiohttp import web

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class DocumentRefused(ValueError):
    """Well-formed JSON the bridge does not read: too deeply nested, or a number too long to convert."""


def loads(body: bytes) -> object:
    """The document in ``body``; raises ``json.JSONDecodeError`` or ``UnicodeDecodeError`` as ``json`` does, and
    ``DocumentRefused``."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _slow_loads(body)
    # A document can only nest deeper than MAX_DEPTH if it has that many brackets: count them in C before walking.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(document, MAX_DEPTH):
        raise DocumentRefused(_TOO_DEEP)
    return document


_TOO_DEEP = f"arrays and objects are nested deeper than {MAX_DEPTH} levels"


def _slow_loads(body: bytes) -> object:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:  # orjson stops at 1,024 levels, json at Python's recursion limit
        raise DocumentRefused(_TOO_DEEP) from None
    except ValueError:  # the only other one json raises: an integer longer than int() converts
        raise DocumentRefused(f"a number has more than {sys.get_int_max_str_digits()} digits") from None


def _deeper_than(document: object, limit: int) -> bool:
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False


def json_answer(data: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``data`` as an ``application/json`` response. A lone surrogate (which a client can send in any name or
    value an error message quotes back) is not UTF-8 and no JSON decoder takes it: it is answered as U+FFFD."""
    try:
        body = orjson.dumps(data)
    except TypeError:
        body = orjson.dumps(_without_surrogates(data))
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _without_surrogates(data: object) -> object:
    if isinstance(data, str):
        return _SURROGATE.sub("\ufffd", data)
    if isinstance(data, dict):
        return {_without_surrogates(key): _without_surrogates(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_without_surrogates(item) for item in data]
    return data
