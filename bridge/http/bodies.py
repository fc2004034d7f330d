"""Request bodies: read within ``server.body_timeout``, and form bodies (op5 clients' ``curl -d``/``curl -F``)
decoded into fields.

Every way a body can fail to arrive or to decode is a ``BadRequestBody`` naming the problem, never a 500.

Forms: a value without a declared charset is UTF-8, or Latin-1 when its bytes are not UTF-8 — old clients in a
Latin-1 locale send ``é`` as the byte 0xE9, and op5 (PHP, bytes throughout) took those as they came. A declared
charset is applied strictly; one Python does not know, or one that cannot label a form because ASCII letters are
not single bytes in it (UTF-16, UTF-32), is refused with 415 naming it.
"""

from __future__ import annotations

import asyncio
import codecs
import email.message
import functools
import re
from collections.abc import Callable
from email.utils import collapse_rfc2231_value
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError

from bridge.core.errors import BadRequestBody, InvalidInput
from bridge.http.keys import CONFIG

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def read_body(request: web.Request) -> bytes:
    """The whole body, decompressed as its Content-Encoding says. A body that does not arrive within
    ``server.body_timeout`` seconds (from the start of reading) is 408; one that cannot be decoded is 400. After
    either the connection is closed once the answer is sent: what is left of the body is not waited for."""
    timeout = request.app[CONFIG].current.server.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        problem = BadRequestBody(408, f"the body did not arrive within {timeout:g} s (server.body_timeout)")
    except web.RequestPayloadError as exc:
        problem = BadRequestBody(400, f"the body cannot be read: {_payload_problem(exc, request)}")
    except ConnectionResetError:  # the client went away: the answer goes nowhere, but nothing is logged as a bug
        problem = BadRequestBody(400, "the connection closed before the body was complete")
    # Without this aiohttp would linger reading (and, for a broken encoding, fail again and log a traceback):
    # the stream ends here, and the connection closes after the answer.
    request.protocol.close()
    request.content.feed_eof()
    raise problem


def _payload_problem(exc: web.RequestPayloadError, request: web.Request) -> str:
    cause = exc.__cause__
    if isinstance(cause, ContentEncodingError):
        encoding = request.headers.get("Content-Encoding", "")
        return f"it is not valid {encoding} data, as its Content-Encoding says it is"
    if isinstance(cause, HttpProcessingError):
        return cause.message
    return str(exc)


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a form body, given its whole Content-Type header (files and binary parts are left
    out; a field given twice keeps its last value)."""
    kind, charset = _content_type(content_type)
    decode = _decoder(charset)
    if kind == "multipart/form-data":
        return _multipart_fields(content_type, body, decode)
    fields: dict[str, str] = {}
    for pair in body.strip().split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            field = decode(_unquote(name), "a field name")
            fields[field] = decode(_unquote(value), field)
    return fields


@functools.lru_cache(maxsize=64)
def _content_type(content_type: str) -> tuple[str, str | None]:
    """A Content-Type header's type and charset; parsed once per distinct header (the email parser costs as much
    as decoding a small form)."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    return header.get_content_type(), header.get_content_charset()


def _unquote(data: bytes) -> bytes:
    return unquote_to_bytes(data.replace(b"+", b" "))


Decoder = Callable[[bytes, str], str]


def _decoder(charset: str | None) -> Decoder:
    """How a field's bytes become text under ``charset`` (None: not declared)."""
    if charset is None:
        return _utf8_or_latin1
    try:
        name = codecs.lookup(charset).name
        ascii_compatible = "a=b&".encode(name) == b"a=b&"
    except (LookupError, ValueError):  # unknown, or a codec that is no text encoding (base64, rot13 …)
        raise BadRequestBody(415, f"the body's charset {charset!r} is unknown; send UTF-8") from None
    if not ascii_compatible:
        raise BadRequestBody(415, f"the body's charset {charset!r} cannot label a form (ASCII is not single bytes "
                                  "in it); send UTF-8")

    def declared(data: bytes, field: str) -> str:
        try:
            return data.decode(name)
        except ValueError:  # UnicodeDecodeError, or another UnicodeError of an odd codec
            raise InvalidInput(field, f"is not valid {charset}, as the body's charset says it is") from None

    return declared


def _utf8_or_latin1(data: bytes, field: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _multipart_fields(content_type: str, body: bytes, form_decode: Decoder) -> dict[str, str]:
    """RFC 7578: parts between ``--boundary`` lines, each with its own headers; the last ends ``--boundary--``."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_boundary()
    if not boundary:
        raise BadRequestBody(400, "a multipart/form-data body needs a boundary parameter in its Content-Type")
    delimiter = b"--" + boundary.encode()
    separator = b"\r\n" + delimiter
    start = 0 if body.startswith(delimiter) else body.find(separator) + 2  # anything before it is a preamble
    if start == 1:
        raise BadRequestBody(400, f"the multipart/form-data body has no part starting with --{boundary}")
    rest = body[start + len(delimiter):]
    fields: dict[str, str] = {}
    while not rest.startswith(b"--"):  # the closing delimiter
        padding, newline, rest = rest.partition(b"\r\n")
        end = rest.find(separator)
        if not newline or padding.strip(b" \t") or end < 0:
            raise BadRequestBody(400, f"the multipart/form-data body is cut short: its parts must end with "
                                      f"--{boundary}--")
        part, rest = rest[:end], rest[end + len(separator):]
        _add_part(part, fields, form_decode)
    return fields


def _unquoted(value: str) -> str:
    """A quoted-string's text (RFC 2045/822: backslash escapes one character), or a token as it is."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _add_part(part: bytes, fields: dict[str, str], form_decode: Decoder) -> None:
    head, blank, data = (b"", b"", part[2:]) if part.startswith(b"\r\n") else part.partition(b"\r\n\r\n")
    if not blank and head:
        data = b""  # headers only: an empty value
    headers = email.message.Message()
    for line in head.split(b"\r\n"):
        key, colon, value = _utf8_or_latin1(line, "").partition(":")
        if colon and key.strip():
            headers[key.strip()] = value.strip()
    # unquote=False: the email module's unquoting also strips <angle brackets>, so name="<a>" would become "a".
    name = headers.get_param("name", header="content-disposition", unquote=False)
    if isinstance(name, tuple):  # RFC 2231 (name*=utf-8''...)
        name = (name[0], name[1], _unquoted(name[2]))
    elif name is not None:
        name = _unquoted(name)
    if name is None:
        raise BadRequestBody(400, "a part of the multipart/form-data body has no name "
                                  "(Content-Disposition: form-data; name=\"…\")")
    if headers.get_filename() or headers.get_content_maintype() != "text":
        return  # files and binary parts are no command's parameters
    # (collapse_rfc2231_value unquotes a plain string again, angle brackets included: only for RFC 2231's triple)
    field = collapse_rfc2231_value(name) if isinstance(name, tuple) else name
    charset = headers.get_content_charset()
    fields[field] = (_decoder(charset) if charset else form_decode)(data, field)
