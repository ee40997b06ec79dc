"""A twin you can watch (issue 14 item 4): the terminal and the logs folder of the session's twin.

An order that fails as the workflow expects (out of stock) is one terminal line, not moto's dump, and
one line in its function's log, not a traceback; an ordinary 401 likewise; the logs are named after
the functions and hold this run only."""

import re
import time
import uuid

import pytest

from tests.e2e.test_rewards import finished, member_with, order

pytestmark = pytest.mark.e2e


def _output(twin) -> str:
    return (twin.state_file.parent / "twin.out").read_text()


def _logs(twin):
    return twin.state_file.parent / "logs"


def _wait_for(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def test_an_out_of_stock_order_is_one_line_on_the_terminal_and_in_its_functions_log(twin):
    member = member_with(twin, 3000)
    key = uuid.uuid4().hex
    done = twin.treue("simulate", "fault", "--program", twin.state["program_id"], "--order-key", key,
                      "--mode", "out_of_stock")
    assert done.returncode == 0, done.stderr
    before = len(_output(twin))
    accepted = order(twin, member, "bergwerk-outdoor-eur", key=key, face_value=2000)
    oid = accepted["order_id"]
    assert finished(twin, oid)["status"] == "FAILED"
    expected = f"payout {oid} FAILED out_of_stock (IssueGiftCard)"
    assert _wait_for(lambda: expected in _output(twin)), _output(twin)[before:]
    time.sleep(0.5)  # anything more the execution's end would print
    shown = _output(twin)[before:]
    about_it = [line for line in shown.splitlines() if oid in line and " /v1/" not in line]  # not access lines
    assert len(about_it) == 1 and about_it[0].endswith(expected), shown
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", about_it[0])
    assert "Traceback" not in shown and "Exception=" not in shown and "FailureEventException" not in shown, shown
    assert expected in (_logs(twin) / "workflows.log").read_text()
    issue_log = (_logs(twin) / "payout-issue-gift-card.log").read_text()
    assert "[ERROR] OutOfStock: no Bergwerk Outdoor cards of 2000 EUR in stock" in issue_log
    assert "Traceback" not in issue_log


def test_an_ordinary_401_is_one_line_not_a_traceback(twin):
    before = (_logs(twin) / "authorizer.log").read_text()
    status, _, problem = twin.request("GET", "/v1/catalog", key="trk_key_01m8xbf2gfx04j8dacqmhr25bd_" + "x" * 43)
    assert status == 401 and problem["type"].endswith("unauthenticated")
    assert _wait_for(lambda: "[ERROR] Exception: Unauthorized" in (_logs(twin) / "authorizer.log").read_text()[
        len(before):])
    logged = (_logs(twin) / "authorizer.log").read_text()[len(before):]
    assert "Traceback" not in logged, logged
    assert logged.count("[ERROR]") == 1


def test_the_logs_are_named_after_the_functions(twin):
    names = {p.name for p in _logs(twin).glob("*.log")}
    assert {"access.log", "orders.log", "authorizer.log", "payout-issue-gift-card.log",
            "accrual-queue-consumer.log"} <= names
    assert not [n for n in names if n.startswith("treue-")], names


def test_the_access_log_names_the_function_by_its_log(twin):
    status, headers, _ = twin.request("GET", "/v1/catalog?limit=1")
    assert status == 200
    request_id = headers["x-amzn-RequestId"]
    access = _logs(twin) / "access.log"
    assert _wait_for(lambda: request_id in access.read_text())
    line = next(line for line in access.read_text().splitlines() if request_id in line)
    assert line.split()[1:4] == ["GET", "/v1/catalog", "200"], line
    assert line.endswith(f"{request_id} catalog"), line  # logs/catalog.log is where to read on
