"""The item codec: plain values ↔ attribute values, item keys, page cursors, and what every store
needs of the table.

Attribute values are integer-only: money (minor units) and points are ``int``; a float is refused
and every number read back is an ``int``. Near the bottom of the store: it imports only the table's
schema (``treue.store.schema``), so every store can import it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from treue.errors import MalformedRequest
from treue.store.schema import INDEX_KEYS, PK, SK, TABLE_KEYS


class Table(Protocol):
    """What a store needs of the program table's ``Store``: its client and the table's name."""

    @property
    def ddb(self) -> Any: ...

    @property
    def table(self) -> str: ...


def _to_av(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": str(value)}  # a StrEnum member as its plain value
    if isinstance(value, dict):
        return {"M": {k: _to_av(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_to_av(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} (money and points are integers)")


def _from_av(av: dict[str, Any]) -> Any:
    (kind, value), = av.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _from_av(v) for k, v in value.items()}
    if kind == "L":
        return [_from_av(v) for v in value]
    raise TypeError(f"unexpected attribute type {kind}")


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _to_av(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_av(v) for k, v in item.items()}


def item_key(pk: str, sk: str) -> dict[str, Any]:
    """The ``Key`` of the item with partition key ``pk`` and sort key ``sk``."""
    return {PK: {"S": pk}, SK: {"S": sk}}


def strip_keys(data: dict[str, Any], index: bool = False) -> dict[str, Any]:
    """A plain item without its table keys (and, with ``index``, without its index keys too)."""
    drop = (*TABLE_KEYS, *INDEX_KEYS) if index else TABLE_KEYS
    return {k: v for k, v in data.items() if k not in drop}


def encode_cursor(sk: str) -> str:
    """The opaque page cursor continuing after sort key ``sk``."""
    return base64.urlsafe_b64encode(json.dumps({"sk": sk}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The sort key of a cursor from :func:`encode_cursor`; MalformedRequest unless it starts with ``prefix``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sk = json.loads(raw)["sk"]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor") from err
    if not isinstance(sk, str) or not sk.startswith(prefix):
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor")
    return sk
