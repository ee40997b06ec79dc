"""Serialize calls into moto's DynamoDB backend.

Real DynamoDB evaluates conditions atomically; moto's in-memory backend is not thread-safe under
concurrent TransactWriteItems (an internal deepcopy race answers HTTP 500 now and then). The twin
and the concurrency tests run moto with this lock so that they test Treue's code, not moto's.
Under the lock, transactions are also made to cost what they touch (``fast_moto_transactions``).
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_patched = False


def serialize_moto_dynamodb() -> None:
    global _patched
    if _patched:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self):
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action
    _patched = True
    fast_moto_transactions()
    fast_moto_queries()


_fast_queries = False


def fast_moto_queries() -> None:
    """Make moto's Query cost what it reads, not the whole table.

    moto answers every Query by sorting every item of the table (``Table.all_items``) and then keeping
    the partition's; on the twin, after a 10,000-line batch, that made each read of a line or an order
    cost ~100k item comparisons. A table query now looks at its own partition only, and an index query
    scans the items unsorted (moto sorts the matches itself afterwards). Results are unchanged. Like
    the transactions, it relies on the lock: ``all_items`` is swapped per call.
    """
    global _fast_queries
    if _fast_queries:
        return
    from moto.dynamodb.models.table import Table

    original = Table.query

    @functools.wraps(original)
    def query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name") if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name or hash_key is None:
            self.all_items = lambda: [item for part in self.items.values()
                                      for item in (part.values() if self.range_key_attr else [part])]
        else:
            part = self.items.get(hash_key, {})
            self.all_items = lambda: list(part.values()) if self.range_key_attr else [part]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query
    _fast_queries = True


_fast = False


def fast_moto_transactions() -> None:
    """Make moto's TransactWriteItems cost what the transaction touches, not the whole table.

    moto snapshots every table of a transaction with ``copy.deepcopy`` before writing, so its cost grows
    with the table (profiled: 97% of a posting's time at a few thousand items). This version checks every
    condition first and writes nothing when one fails — as DynamoDB does — and keeps copies of only the
    items it writes, to put them back if a write itself fails. It relies on the lock above: no other
    call can run between the checks and the writes.
    """
    global _fast
    if _fast:
        return
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self, transact_items):
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        planned, errors, failed = [], [], False
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise MockValidationException("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                              op.get("ExpressionAttributeValues"))
                if not check.expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    errors.append(("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old))
                    failed = True
                    continue
            errors.append((None, None, None))
            planned.append((op_type, op, table_name, key, current.to_json()["Attributes"] if current else None))
        if failed:
            raise TransactionCanceledException(errors)
        done = []
        try:
            for op_type, op, table_name, key, before in planned:
                if op_type == "Put":
                    self.put_item(table_name, op["Item"])
                elif op_type == "Delete":
                    self.delete_item(table_name, key)
                elif op_type == "Update":
                    self.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                     expression_attribute_names=op.get("ExpressionAttributeNames"),
                                     expression_attribute_values=op.get("ExpressionAttributeValues"))
                else:
                    continue
                done.append((table_name, key, before))
        except Exception:
            for table_name, key, before in reversed(done):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    _fast = True
