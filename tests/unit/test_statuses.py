"""The status and kind enums of ``treue.core.statuses`` are the one place statuses are spelled.

- The state machines (``infra/*.asl.json``, plain JSON Step Functions reads) keep their own strings:
  every string a Choice compares is a member of the enum of the field it compares.
- No module of logic, store, handlers or providers compares a status with a string literal or writes
  one into a record (an ``ast`` check; it finds the literals of the code before the enums).
- The OpenAPI document lists the allowed values of every status field.
- The webhook request's event types (a ``Literal``, so a strict model takes plain JSON strings) are
  exactly the ``EventType`` members.
"""

from __future__ import annotations

import ast
import json
from enum import StrEnum
from pathlib import Path
from typing import get_args

import pytest

from treue.core import statuses
from treue.core.ledger import PostingType
from treue.core.money import MovementType
from treue.core.statuses import (
    BATCH_FINISHED,
    BATCH_UNFINISHED,
    ORDER_FINAL,
    ORDER_IN_FLIGHT,
    ORDER_TRANSITIONS,
    BatchStatus,
    EventType,
    ItemType,
    OrderStatus,
    ReportType,
)
from treue.logic import models

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "treue"
LAYERS = ("logic", "store", "handlers", "providers")

# The field each Choice of a state machine compares → the enum its strings belong to
ASL_FIELDS: dict[str, type[StrEnum]] = {
    "$.type": ItemType,
    "$.status": OrderStatus,
}


def asl_comparisons(document: dict) -> list[tuple[str, str]]:
    """(variable, string) of every StringEquals in the document's Choice states, nested rules included."""
    found = []

    def rule(r: dict) -> None:
        if "StringEquals" in r:
            found.append((r.get("Variable", ""), r["StringEquals"]))
        for key in ("And", "Or"):
            for inner in r.get(key, []):
                rule(inner)
        if "Not" in r:
            rule(r["Not"])

    def states(machine: dict) -> None:
        for state in machine.get("States", {}).values():
            for choice in state.get("Choices", []):
                rule(choice)
            for branch in state.get("Branches", []):
                states(branch)
            for inner in ("Iterator", "ItemProcessor"):
                if inner in state:
                    states(state[inner])

    states(document)
    return found


def asl_problems(document: dict) -> list[str]:
    problems = []
    for variable, value in asl_comparisons(document):
        enum = ASL_FIELDS.get(variable)
        if enum is None:
            problems.append(f"{variable} compared with {value!r}: name its enum in ASL_FIELDS")
        elif value not in set(enum):
            problems.append(f"{variable} compared with {value!r}, not a member of {enum.__name__}")
    return problems


@pytest.mark.parametrize("path", sorted((ROOT / "infra").glob("*.asl.json")), ids=lambda p: p.name)
def test_the_state_machines_compare_enum_members(path):
    document = json.loads(path.read_text())
    assert not asl_problems(document)


def test_the_state_machine_check_finds_a_string_that_is_no_member():
    payout = json.loads((ROOT / "infra" / "payout.asl.json").read_text())
    assert asl_comparisons(payout), "the payout workflow chooses by the item type"
    made_up = {"States": {"Pick": {"Type": "Choice", "Choices": [
        {"Variable": "$.type", "StringEquals": "giftcard", "Next": "A"},
        {"And": [{"Variable": "$.status", "StringEquals": "DONE"}], "Next": "B"},
        {"Variable": "$.mood", "StringEquals": "calm", "Next": "C"},
    ]}}}
    assert len(asl_problems(made_up)) == 3


# ---------------------------------------------------------------- no status literals in the code

STATUS_VALUES = frozenset(
    str(member) for enum in vars(statuses).values()
    if isinstance(enum, type) and issubclass(enum, StrEnum) and enum is not StrEnum for member in enum
)


def _is_status(node: ast.AST) -> bool:
    """``x["status"]``, ``x.status`` or a name ``status``."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "status"
    if isinstance(node, ast.Attribute):
        return node.attr == "status"
    return isinstance(node, ast.Name) and node.id == "status"


def _literals(node: ast.AST) -> list[str]:
    """The status strings a comparison's other side spells out (a constant, or a tuple/list/set of them)."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and i.value in STATUS_VALUES]


def status_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) of each status string compared with a status or written as a record's status."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(s) for s in sides):
                found += [(node.lineno, v) for s in sides for v in _literals(s)]
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "status":
                    found += [(node.lineno, v) for v in _literals(value)]
    return found


def test_no_status_is_a_string_literal():
    found = []
    for layer in LAYERS:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{line}: {value!r}"
                      for line, value in status_literals(path.read_text())]
    assert not found, "use the enums of treue.core.statuses:\n" + "\n".join(found)


def test_the_literal_check_finds_the_old_spellings():
    old = (
        'if order["status"] in ("PROCESSING", "ISSUED"):\n    pass\n'
        'if batch["status"] != "running":\n    pass\n'
        'if result.status == "CANCELED":\n    pass\n'
        'order = {"id": 1, "status": "PENDING"}\n'
        'fine = {"status": OrderStatus.PENDING, "reason": "points held"}\n'
        'if kind == "capture":\n    pass\n'
    )
    assert [value for _, value in status_literals(old)] == ["PROCESSING", "ISSUED", "running", "CANCELED", "PENDING"]


# ---------------------------------------------------------------- the enums themselves and the API document


def test_members_are_their_strings():
    assert OrderStatus.PENDING == "PENDING" and str(OrderStatus.PENDING) == "PENDING"
    assert json.dumps({"status": BatchStatus.COMPLETED_WITH_FAILURES}) == '{"status": "completed_with_failures"}'
    assert f"{EventType.BUDGET_LOW}" == "budget.low"


def test_the_order_groups_partition_the_statuses():
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert set(ORDER_IN_FLIGHT) | set(ORDER_FINAL) == set(OrderStatus)
    assert not set(ORDER_IN_FLIGHT) & set(ORDER_FINAL)
    assert all(not ORDER_TRANSITIONS[s] for s in ORDER_FINAL if s != OrderStatus.COMPLETED)
    assert set(BATCH_UNFINISHED) | set(BATCH_FINISHED) == set(BatchStatus)


def test_the_webhook_request_takes_exactly_the_event_types():
    assert get_args(models.EventType) == tuple(EventType)


def _status_fields(schemas: dict) -> list[tuple[str, dict]]:
    return [(f"{name}.{prop}", spec) for name, schema in schemas.items()
            for prop, spec in schema.get("properties", {}).items() if prop == "status" and name != "Problem"]


def test_the_api_document_lists_every_status_field_s_values():
    doc = json.loads((PACKAGE / "openapi.json").read_text())
    schemas = doc["components"]["schemas"]
    fields = _status_fields(schemas)
    assert len(fields) >= 10
    for field, spec in fields:
        ref = spec.get("$ref") or next((s["$ref"] for s in spec.get("anyOf", []) if "$ref" in s), None)
        assert ref, f"{field} lists no values"
        enum = schemas[ref.rsplit("/", 1)[1]]
        assert enum["type"] == "string" and enum["enum"], field
    assert schemas["OrderStatus"]["enum"] == [str(s) for s in OrderStatus]


def _lists_values(spec: dict, schemas: dict) -> bool:
    """Whether a property's schema names its allowed values: an enum inline, a reference to an enum
    schema, or any of those (and null)."""
    if "enum" in spec:
        return True
    if "$ref" in spec:
        return "enum" in schemas[spec["$ref"].rsplit("/", 1)[1]]
    options = [s for s in spec.get("anyOf", []) if s.get("type") != "null"]
    return bool(options) and all(_lists_values(s, schemas) for s in options)


def test_the_api_document_lists_every_kind_field_s_values():
    """A record's kind (what an order, a posting, a budget movement, a report is, a report's format) lists
    its values like a status does; ``Problem.type`` is a URI, ``Activity.type`` the partner's own name of what a
    member did (an open set: the activity rules match it by their ``activity_type``)."""
    schemas = json.loads((PACKAGE / "openapi.json").read_text())["components"]["schemas"]
    fields = [(f"{name}.{prop}", spec) for name, schema in schemas.items()
              for prop, spec in schema.get("properties", {}).items()
              if prop in ("type", "format") and name not in ("Problem", "Activity")]
    assert {"LedgerEntry.type", "BudgetMovement.type", "JournalLine.type", "Report.type", "Report.format"} <= {
        f for f, _ in fields}
    assert not [f for f, spec in fields if not _lists_values(spec, schemas)]
    assert schemas["PostingType"]["enum"] == [str(t) for t in PostingType]
    assert schemas["MovementType"]["enum"] == [str(t) for t in MovementType]
    assert schemas["ReportType"]["enum"] == [str(t) for t in ReportType]
