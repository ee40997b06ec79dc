"""Batch logic without AWS: CSV reading, line ids, what a run's end means, costs and shortfalls."""

import pytest

from treue.core import ids
from treue.core.records import BatchLine
from treue.core.statuses import LineStatus
from treue.errors import MalformedRequest
from treue.logic import batches


def test_a_csv_becomes_reward_lines_with_absent_empty_cells():
    text = ("\ufeffreference,item_id,face_value,email,member_id,external_id,name,message,delivery_method,"
            "delivery_email\r\n"
            "a-1,kaffeekranz-eur,1000,ada@example.com,,,Ada,Thanks,email,ada@work.example.com\r\n"
            "\r\n"
            "a-2,voucher-5-off,,,,emp-2,,,api,\r\n"
            "a-3,kaffeekranz-eur,ten,,,,,,,\r\n")
    lines = batches.lines_from_csv(text)
    assert lines[0] == {"reference": "a-1", "item_id": "kaffeekranz-eur", "face_value": 1000,
                        "recipient": {"email": "ada@example.com", "name": "Ada"}, "message": "Thanks",
                        "delivery": {"method": "email", "email": "ada@work.example.com"}}
    assert lines[1] == {"reference": "a-2", "item_id": "voucher-5-off", "recipient": {"external_id": "emp-2"},
                        "delivery": {"method": "api"}}
    assert lines[2]["face_value"] == "ten"  # left for validation to report with its line number
    assert len(lines) == 3  # the blank row is skipped


@pytest.mark.parametrize("header, says", [
    ("item_id,face_value", "lacks reference"),
    ("reference,item_id,colour", "unknown columns colour"),
])
def test_a_csv_with_a_wrong_header_is_refused(header, says):
    with pytest.raises(MalformedRequest) as err:
        batches.lines_from_csv(header + "\nx,y\n")
    assert says in err.value.detail


def test_a_csv_longer_than_the_limit_is_refused():
    text = "reference,item_id\n" + "".join(f"r{n},i\n" for n in range(6))
    assert len(batches.lines_from_csv(text, limit=6)) == 6
    with pytest.raises(MalformedRequest):
        batches.lines_from_csv(text, limit=5)


def test_a_lines_reward_id_is_the_same_for_every_try_of_an_attempt_and_new_per_attempt():
    batch_id = ids.new_id("bat")
    first = batches.line_reward_id(batch_id, 7, 1)
    assert first == batches.line_reward_id(batch_id, 7, 1) and ids.well_formed(first, "rwd")
    assert first[4:14] == batch_id[4:14]  # time-ordered with its batch
    others = {batches.line_reward_id(batch_id, 7, 2), batches.line_reward_id(batch_id, 8, 1),
              batches.line_reward_id(ids.new_id("bat"), 7, 1)}
    assert first not in others and len(others) == 3


def test_a_run_is_halted_while_lines_are_unfinished_else_completed_with_or_without_failures():
    def counted(**kw):
        return {"pending": 0, "processing": 0, "issued": 0, "failed": 0, "rejected": 0, **kw}

    assert batches.status_after_run(counted(issued=9, rejected=1)) == "completed"
    assert batches.status_after_run(counted(issued=9, failed=1)) == "completed_with_failures"
    assert batches.status_after_run(counted(issued=5, pending=4, failed=1)) == "halted"
    assert batches.status_after_run(counted(issued=5, processing=1)) == "halted"
    shards = [{"pending": 1, "issued": 2}, {"failed": 1, "rejected": 3}]
    assert batches.counts(shards) == counted(pending=1, issued=2, failed=1, rejected=3)


def test_costs_add_up_per_currency_and_shortfalls_name_each_currency_short():
    def line(n, currency, cost):
        return BatchLine(program_id="prg_1", batch_id="bat_1", line=n, status=LineStatus.PENDING, attempt=1,
                         updated_at="2026-03-01T10:00:00Z", currency=currency, cost=cost)

    lines = [line(1, "EUR", 1025), line(2, "EUR", 2025), line(3, "GBP", 500), line(4, "EUR", 0)]
    need = batches.costs(lines)
    assert need == {"EUR": 3050, "GBP": 500}
    assert batches.shortfalls(need, {"EUR": 3050, "GBP": 499}) == [{"currency": "GBP", "needed": 500,
                                                                   "available": 499}]
    assert batches.shortfalls(need, {"EUR": 10_000, "GBP": 500}) == []
