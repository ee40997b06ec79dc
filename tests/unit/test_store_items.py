"""The item codec (``treue.store.items``) and the table schema (``treue.store.schema``): one copy of
the item key, key stripping and cursor helpers for every store, and one definition of the table
for the stores, the stack and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.support import create_table
from treue.errors import MalformedRequest
from treue.store import schema
from treue.store.items import decode_cursor, encode_cursor, from_item, item_key, strip_keys, to_item

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions" / "treue"
HOME = {"store/items.py", "store/schema.py"}  # where keys are spelled out


def test_an_item_key_and_the_keys_stripped_off_an_item():
    assert item_key("P#p1#MEMBER#m1", "BALANCE") == {"pk": {"S": "P#p1#MEMBER#m1"}, "sk": {"S": "BALANCE"}}
    item = {"pk": "a", "sk": "b", "gsi1pk": "c", "gsi1sk": "d", "points": 5}
    assert strip_keys(item) == {"gsi1pk": "c", "gsi1sk": "d", "points": 5}
    assert strip_keys(item, index=True) == {"points": 5}


def test_attribute_values_are_integer_only():
    assert from_item(to_item({"points": 1250, "money": {"amount": 499, "currency": "EUR"}, "gone": None})) == {
        "points": 1250, "money": {"amount": 499, "currency": "EUR"}}
    assert to_item({"points": 7})["points"] == {"N": "7"}
    with pytest.raises(TypeError, match="integers"):
        to_item({"amount": 4.99})


def test_a_cursor_comes_back_as_its_sort_key_and_nothing_else_passes():
    cursor = encode_cursor("ENTRY#01J0000000000000000000000A")
    assert "=" not in cursor and decode_cursor(cursor, "ENTRY#") == "ENTRY#01J0000000000000000000000A"
    for bad in (cursor[:-3], "not a cursor", encode_cursor("ORDER#1")):  # truncated, garbage, another listing's
        with pytest.raises(MalformedRequest) as caught:
            decode_cursor(bad, "ENTRY#")
        assert caught.value.extra["parameter"] == "cursor"


def test_the_key_builders_keep_the_layout():
    assert schema.member_pk("p1", "m1") == "P#p1#MEMBER#m1"
    assert schema.idem_pk("p1", "purchase", "r1") == "P#p1#IDEM#purchase#r1"
    assert schema.ident_pk("p1", "email", "a@b.c") == "P#p1#IDENT#email#a@b.c"
    assert schema.account_pk("p1", 3) == "P#p1#ACCT#3"
    assert schema.journal_keys("p1", "2026-03-01T12:00:00.000Z", "e1") == {
        "gsi1pk": "P#p1#JOURNAL", "gsi1sk": "2026-03-01T12:00:00.000Z#e1"}
    assert 0 <= schema.account_shard("01J0000000000000000000000A") < schema.ACCOUNT_SHARDS
    assert schema.pending_audit_keys("p1", "r1")["gsi1pk"] == f"AUDIT#PENDING#{schema.pending_shard('p1')}"


def test_the_tests_table_is_the_schemas_table():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        table = ddb.describe_table(TableName=create_table(ddb, "schema-test"))["Table"]
    assert table["KeySchema"] == schema.TABLE["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(schema.TABLE["AttributeDefinitions"], key=str)
    [index] = table["GlobalSecondaryIndexes"]
    [wanted] = schema.TABLE["GlobalSecondaryIndexes"]
    assert (index["IndexName"], index["KeySchema"], index["Projection"]) == (
        wanted["IndexName"], wanted["KeySchema"], wanted["Projection"])


def _copies(tree: ast.AST) -> list[tuple[int, str]]:
    """Item keys written out (``{"pk": {"S": …}, "sk": {"S": …}}``) and key-name filters (a tuple or set
    of strings naming ``pk`` and ``sk``): what ``item_key`` and ``strip_keys`` are for."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
            keys = [k.value for k in node.keys]
            if sorted(keys) == ["pk", "sk"] and all(
                    isinstance(v, ast.Dict) and [getattr(k, "value", None) for k in v.keys] == ["S"]
                    for v in node.values):
                found.append((node.lineno, "an item key written out (items.item_key)"))
        if isinstance(node, ast.Tuple | ast.Set | ast.List):
            names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if {"pk", "sk"} <= names:
                found.append((node.lineno, "the key names listed (items.strip_keys, schema.TABLE_KEYS)"))
    return found


def test_every_store_uses_the_one_copy_of_the_key_helpers():
    copies = [f"{path.relative_to(FUNCTIONS)}:{line}: {what}"
              for folder in ("store", "providers") for path in sorted((FUNCTIONS / folder).glob("*.py"))
              if str(path.relative_to(FUNCTIONS)) not in HOME
              for line, what in _copies(ast.parse(path.read_text()))]
    assert copies == []


def test_the_copy_finder_finds_copies():
    made_up = ('def _key(pk, sk):\n    return {"pk": {"S": pk}, "sk": {"S": sk}}\n'
               'def _strip(d):\n    return {k: v for k, v in d.items() if k not in ("pk", "sk")}\n')
    assert [line for line, _ in _copies(ast.parse(made_up))] == [2, 4]
