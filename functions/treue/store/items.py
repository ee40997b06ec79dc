"""DynamoDB items: plain values ↔ attribute values, and what every store needs of the table.

The bottom of the store: it imports nothing of the store, so ``treue.store.dynamodb`` and the
modules it writes with (``treue.store.events``) can all import it.
"""

from __future__ import annotations

from typing import Any, Protocol

GSI = "gsi1"  # the table's one sparse index (``treue.store.dynamodb`` lists what it serves)


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
        return {"S": value}
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
