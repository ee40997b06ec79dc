"""DynamoDB storage of batches (bulk issuance) and the S3 items files their runs read.

Layout (same table as ``treue.store.schema``):

    pk                        sk              what
    P#<pid>#BATCH#<bid>       BATCH           the batch: status, runs, cost, settings; indexed by time
                                              (gsi1 P#<pid>#BATCHES)
    P#<pid>#BATCH#<bid>       LINE#<000001>   one line: its request, status, attempt, reward id, reason
    P#<pid>#BATCH#<bid>#COUNTS  COUNT#<00..15>  line counts per status, one shard per line number mod 16

A line's status and its shard's counts change in one transaction, so the counts are exact. The
counts have their own partition so that reading them (every status poll) never touches the lines.

S3 (the batch bucket): ``<pid>/<bid>/run-<n>.json``, the line numbers run ``n`` works on, read by the
workflow's Distributed Map; ``uploads/<pid>/<upload id>.csv``, a CSV a brand uploaded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from treue.core.records import Batch, BatchLine
from treue.core.statuses import LINE_ACCEPTED, BatchStatus, LineStatus
from treue.errors import BatchNotFound, Contention, MalformedRequest
from treue.store import clients
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import batch_pk, counts_pk
from treue.store.table import Replay, newest_first
from treue.store.watchlist import Watchlist

LINE_STATUSES = LINE_ACCEPTED  # a line's, once accepted (else rejected)
SHARDS = 16  # count shards per batch


def shard_of(line: int) -> int:
    return line % SHARDS


def line_sk(line: int) -> str:
    return f"LINE#{line:06d}"


class BatchStore(OnTable):

    # ------------------------------------------------------------ create

    def put_lines(self, batch: Batch, lines: list[BatchLine]) -> None:
        """Write a new batch's lines (before :meth:`create`)."""
        pk = batch_pk(batch.program_id, batch.id)
        self._write_all([{"PutRequest": {"Item": to_item({"pk": pk, "sk": line_sk(line.line), **line.item()})}}
                         for line in lines])

    def delete_lines(self, batch: Batch, lines: list[BatchLine]) -> None:
        """Remove the lines of a batch that was not created (see :meth:`create`)."""
        pk = batch_pk(batch.program_id, batch.id)
        self._write_all([{"DeleteRequest": {"Key": item_key(pk, line_sk(line.line))}} for line in lines])

    def create(self, batch: Batch, lines: list[BatchLine], idempotency: tuple[str, str, str],
               result: dict[str, Any], hold: Sequence[dict[str, Any]] = ()) -> Replay | None:
        """The idempotency guard, the ``hold`` items (right after it: index 1 on), the batch and its
        counters in one transaction; the lines were written before (:meth:`put_lines`).

        When the transaction fails (a concurrent request with the same key, or a budget that no longer
        covers the hold) the caller deletes the lines (:meth:`delete_lines`); any it could not delete
        belong to no batch anyone can read and are never run."""
        pid, bid, now = batch.program_id, batch.id, batch.created_at
        pk = batch_pk(pid, bid)
        shards = [{str(status): 0 for status in LineStatus} for _ in range(SHARDS)]
        for line in lines:
            shards[shard_of(line.line)][line.status] += 1
        kind, reference, fingerprint = idempotency
        items = [
            self.store._idem_put(pid, kind, reference, fingerprint, result, now),
            *hold,
            self.store._put_new({"pk": pk, "sk": "BATCH", **batch.item(), "gsi1pk": f"P#{pid}#BATCHES",
                                 "gsi1sk": f"{now}#{bid}"}),
            *({"Put": {"TableName": self.table,
                       "Item": to_item({"pk": counts_pk(pid, bid), "sk": f"COUNT#{i:02d}", **counts})}}
              for i, counts in enumerate(shards)),
            self.watch_item(pid, bid, now),  # until its run ends
        ]
        return self.store.transact_guarded(items, pid, kind, reference)

    def _write_all(self, puts: list[dict[str, Any]], threads: int = 8) -> None:
        """BatchWriteItem in chunks of 25, ``threads`` at a time (50,000 lines in well under the API's 29 s)."""
        from concurrent.futures import ThreadPoolExecutor

        def write(chunk: list[dict[str, Any]]) -> None:
            pending = {self.table: chunk}
            for attempt in range(12):
                out = self.ddb.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    return
                time.sleep(min(1.0, 0.02 * 2 ** attempt))  # unprocessed items: back off, as AWS advises
            raise Contention("storage is busy writing the batch lines; retry with the same Idempotency-Key")

        chunks = [puts[start : start + 25] for start in range(0, len(puts), 25)]
        if len(chunks) <= 1:
            for chunk in chunks:
                write(chunk)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(write, chunks))

    # ------------------------------------------------------------ read

    def get(self, program_id: str, batch_id: str) -> Batch | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(batch_pk(program_id, batch_id), "BATCH"),
                                ConsistentRead=True)
        return Batch.from_item(strip_keys(from_item(out["Item"]), index=True)) if "Item" in out else None

    def require(self, program_id: str, batch_id: str) -> Batch:
        found = self.get(program_id, batch_id)
        if found is None:
            raise BatchNotFound(f"batch {batch_id[:40]} does not exist")
        return found

    def counters(self, program_id: str, batch_id: str) -> list[dict[str, Any]]:
        out = self.ddb.query(
            TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
            ExpressionAttributeValues={":pk": {"S": counts_pk(program_id, batch_id)}, ":c": {"S": "COUNT#"}},
        )
        return [from_item(i) for i in out.get("Items", [])]

    def line(self, program_id: str, batch_id: str, line: int) -> BatchLine | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(batch_pk(program_id, batch_id), line_sk(line)),
                                ConsistentRead=True)
        return BatchLine.from_item(strip_keys(from_item(out["Item"]), index=True)) if "Item" in out else None

    def lines(self, program_id: str, batch_id: str, after: int = 0, limit: int | None = None,
              statuses: tuple[str, ...] = ()) -> Iterator[BatchLine]:
        """Lines in line order after line ``after``, only those in ``statuses`` when given."""
        params: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {":pk": {"S": batch_pk(program_id, batch_id)},
                                          ":from": {"S": line_sk(after + 1)}, ":to": {"S": "LINE#999999"}},
        }
        if statuses:
            params["FilterExpression"] = "#s IN (" + ", ".join(f":s{i}" for i in range(len(statuses))) + ")"
            params["ExpressionAttributeNames"] = {"#s": "status"}
            for i, s in enumerate(statuses):
                params["ExpressionAttributeValues"][f":s{i}"] = {"S": s}
        given = 0
        while True:
            out = self.ddb.query(**params)
            for raw in out.get("Items", []):
                yield BatchLine.from_item(strip_keys(from_item(raw), index=True))
                given += 1
                if limit is not None and given >= limit:
                    return
            if "LastEvaluatedKey" not in out:
                return
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def page(self, program_id: str, after: str | None, limit: int) -> tuple[list[Batch], str | None]:
        """The program's batches, newest first."""
        items, cursor = newest_first(self.ddb, self.table, f"P#{program_id}#BATCHES", after, limit)
        return [Batch.from_item(strip_keys(i, index=True)) for i in items], cursor

    # ------------------------------------------------------------ change

    def line_move(self, program_id: str, batch_id: str, line: int, source: str, to: str, attempt: int,
                  now: str, fields: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Transaction items: the line from ``source`` to ``to`` under ``attempt`` (the line's own, or the
        next one when a retry starts it), and its shard's counts; both or neither."""
        pk = batch_pk(program_id, batch_id)
        values: dict[str, Any] = {":from": {"S": source}, ":to": {"S": to}, ":now": {"S": now},
                                  ":attempt": {"N": str(attempt)}}
        names = {"#s": "status"}
        sets = ["#s = :to", "updated_at = :now", "attempt = :attempt"]
        removes = []
        for i, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{i}"] = name
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":f{i}"] = to_item({"v": value})["v"]
                sets.append(f"#f{i} = :f{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return [
            {"Update": {"TableName": self.table, "Key": item_key(pk, line_sk(line)), "UpdateExpression": expression,
                        "ConditionExpression": "#s = :from AND attempt <= :attempt",
                        "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}},
            {"Update": {"TableName": self.table, "Key": item_key(counts_pk(program_id, batch_id),
                                                              f"COUNT#{shard_of(line):02d}"),
                        "UpdateExpression": "ADD #from :minus, #to :one",
                        "ExpressionAttributeNames": {"#from": source, "#to": to},
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":minus": {"N": "-1"}}}},
        ]

    def replay_of(self, program_id: str, idempotency_key: str) -> Replay | None:
        """The batch an Idempotency-Key already created, if any."""
        return self.store.replay_of(program_id, "batch", idempotency_key)

    def queue_run(self, program_id: str, batch_id: str, run: int, now: str, hold: Sequence[dict[str, Any]] = ()
                  ) -> bool:
        """A finished batch is queued for run ``run``, with the ``hold`` items (index 1 on) in the same
        transaction; False when another retry queued it first."""
        return self.store.transact_first([{"Update": {
            "TableName": self.table, "Key": item_key(batch_pk(program_id, batch_id), "BATCH"),
            "UpdateExpression": "SET #s = :queued, queued_run = :run, updated_at = :now",
            "ConditionExpression": "runs = :runs AND #s IN (:c, :cf, :h)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":queued": {"S": BatchStatus.QUEUED}, ":run": {"N": str(run)},
                                          ":runs": {"N": str(run - 1)}, ":now": {"S": now},
                                          ":c": {"S": BatchStatus.COMPLETED},
                                          ":cf": {"S": BatchStatus.COMPLETED_WITH_FAILURES},
                                          ":h": {"S": BatchStatus.HALTED}},
        }}, *hold, self.watch_item(program_id, batch_id, now)])

    def begin_run(self, program_id: str, batch_id: str, run: int, now: str) -> bool:
        """The batch is running run ``run``; False when it already was (a re-driven first step)."""
        return self.store.update_if(
            Key=item_key(batch_pk(program_id, batch_id), "BATCH"),
            UpdateExpression="SET #s = :running, runs = :run, updated_at = :now REMOVE completed_at, "
                             "halted_reason",
            ConditionExpression="runs < :run",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":running": {"S": BatchStatus.RUNNING}, ":run": {"N": str(run)},
                                       ":now": {"S": now}},
        ) is not None

    def finish_run_items(self, program_id: str, batch_id: str, run: int, status: str, now: str,
                         reason: str | None) -> dict[str, Any]:
        """The Update ending run ``run``: the batch running it, or queued for it (a run whose execution
        ended before its first step did); either way the batch has had run ``run`` after it."""
        values: dict[str, Any] = {":to": {"S": status}, ":now": {"S": now}, ":run": {"N": str(run)},
                                  ":running": {"S": BatchStatus.RUNNING}, ":queued": {"S": BatchStatus.QUEUED}}
        sets = "#s = :to, runs = :run, updated_at = :now, completed_at = :now"
        if reason:
            sets += ", halted_reason = :reason"
            values[":reason"] = {"S": reason[:500]}
        return {"Update": {
            "TableName": self.table, "Key": item_key(batch_pk(program_id, batch_id), "BATCH"),
            "UpdateExpression": "SET " + sets,
            "ConditionExpression": "(runs = :run AND #s = :running) OR (queued_run = :run AND #s = :queued)",
            "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": values,
        }}

    def watch_item(self, program_id: str, batch_id: str, since: str) -> dict[str, Any]:
        """Transaction item: the batch is on the sweeper's watch list while a run is queued or running."""
        return Watchlist(self.store).watch_item("batch", program_id, batch_id, since)

    def unwatch_item(self, program_id: str, batch_id: str) -> dict[str, Any]:
        """Transaction item: the batch's run ended; off the watch list until a retry queues another."""
        return Watchlist(self.store).unwatch_item("batch", program_id, batch_id)

    def transact(self, items: list[dict[str, Any]]) -> None:
        self.store.transact(items)


class BatchFiles(clients.BucketFiles):
    """The S3 side of batches: run items files and CSV uploads."""

    @staticmethod
    def run_key(program_id: str, batch_id: str, run: int) -> str:
        return f"{program_id}/{batch_id}/run-{run}.json"

    @staticmethod
    def upload_key(program_id: str, upload_id: str) -> str:
        return f"uploads/{program_id}/{upload_id}.csv"

    def put_run(self, program_id: str, batch_id: str, run: int, lines: list[int]) -> str:
        key = self.run_key(program_id, batch_id, run)
        self.put_json(key, [{"line": n} for n in lines])
        return key

    def upload_url(self, program_id: str, upload_id: str, seconds: int, content_length: int) -> str:
        """A pre-signed PUT whose signature covers Content-Length: S3 refuses a body of any other size."""
        return self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self.upload_key(program_id, upload_id),
                                  "ContentType": "text/csv", "ContentLength": content_length}, ExpiresIn=seconds)

    def read_upload(self, program_id: str, upload_id: str, max_bytes: int) -> str | None:
        """The uploaded CSV as text, None when nothing was uploaded (yet)."""
        try:
            out = self.s3.get_object(Bucket=self.bucket, Key=self.upload_key(program_id, upload_id))
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        if int(out.get("ContentLength") or 0) > max_bytes:  # judged from the headers, before reading the body
            out["Body"].close()
            raise MalformedRequest(f"the uploaded CSV is larger than {max_bytes // 1_000_000} MB")
        return out["Body"].read().decode("utf-8-sig")
