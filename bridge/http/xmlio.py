"""XML out of HTTP, for a dialect whose clients may ask for it (op5's ``?format=xml``): the same JSON-like answer,
written as elements with the standard library's ElementTree.

The shape is the bridge's own, as plain as a JSON answer: the root ``<response>``; an object's members become
elements named by their keys (a key that is no XML name becomes ``<item name="key">``); a list's members become
``<item>`` elements; ``true``/``false`` and numbers are text; ``null`` is an empty element. Line 1 is the XML
declaration.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from aiohttp import web

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
ROOT = "response"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
# Characters XML 1.0 cannot carry (a client's value echoed in an error may hold them): written as \xNN instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = "" if value is None else str(value)
    return _NOT_XML.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _fill(element: ET.Element, value: object) -> None:
    if isinstance(value, Mapping):
        for key, member in value.items():
            name = str(key)
            if _NAME.fullmatch(name) and not name.lower().startswith("xml"):
                child = ET.SubElement(element, name)
            else:
                child = ET.SubElement(element, "item", {"name": _text(name)})
            _fill(child, member)
    elif isinstance(value, list | tuple):
        for member in value:
            _fill(ET.SubElement(element, "item"), member)
    else:
        element.text = _text(value)


def xml_document(data: object) -> bytes:
    """``data`` (what a JSON answer would hold) as an XML document."""
    root = ET.Element(ROOT)
    _fill(root, data)
    return (DECLARATION + ET.tostring(root, encoding="unicode")).encode("utf-8")


def xml_answer(data: object, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """``data`` as an ``application/xml`` response."""
    return web.Response(body=xml_document(data), status=status, headers=headers, content_type="application/xml",
                        charset="utf-8")
