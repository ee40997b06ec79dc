"""The operator CLI does not mislead: an unknown or malformed program is exit 2 with one line that helps
(nothing read as "all is well", nothing written), --program defaults to the running twin's program,
``treue --version``, ``treue program list``.

The twin here is what the CLI sees of one: a state file whose AWS endpoint is a moto server (in this process)
with the stack's table."""

import hashlib
import json
import re
import socket
import sys
import tomllib
import uuid
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from tests.support import create_table
from treue import cli
from treue.logic import provisioning
from treue.logic.batches import lines_from_csv
from treue.runtime import now
from treue.store.dynamodb import Store

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
UNKNOWN = "prg_01jzzzzzzzzzzzzzzzzzzzzzzz"  # well formed, in no table


@pytest.fixture(scope="module")
def endpoint():
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def twin(endpoint, tmp_path):
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="twin",
                       aws_secret_access_key="twin")
    table = create_table(ddb, f"treue-cli-{uuid.uuid4().hex[:8]}")
    store = Store(table, ddb=ddb)
    demo = provisioning.create_program(store, "Demo Café", "EUR", now())["program_id"]
    other = provisioning.create_program(store, "Other shop", "CHF", now(), country="CH")["program_id"]
    state = {"aws_endpoint": endpoint, "region": REGION, "table": table, "program_id": demo,
             "url": "http://127.0.0.1:9"}
    state_file = tmp_path / "local.json"
    state_file.write_text(json.dumps(state))
    return SimpleNamespace(ddb=ddb, table=table, store=store, program=demo, other=other, state_file=state_file)


def treue(capsys, *argv, state_file=None):
    """(exit code, stdout, stderr) of ``treue [--state FILE] argv…`` run in this process."""
    try:
        code = cli.main([*(["--state", str(state_file)] if state_file else []), *argv])
    except SystemExit as stop:  # as the interpreter ends on it: a message goes to stderr, exit 1
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = 1 if isinstance(stop.code, str) else (stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def items(twin) -> list[dict]:
    return twin.ddb.scan(TableName=twin.table)["Items"]


@pytest.mark.parametrize("argv", [
    ["audit", "verify"],
    ["audit", "verify", "--no-seal"],
    ["finance", "reconcile", "--date", "2026-11-24"],
    ["key", "create", "--scope", "partner"],
    ["simulate", "fault", "--brand", "Stadtkino", "--mode", "5xx"],
    ["program", "enable-api"],
])
def test_an_unknown_program_is_exit_2_with_a_line_that_helps_and_nothing_written(twin, capsys, argv):
    before = items(twin)
    code, out, err = treue(capsys, *argv, "--program", UNKNOWN, state_file=twin.state_file)
    assert code == 2, (out, err)  # was 0 with intact: true, records_checked: 0 (audit, finance)
    assert out == ""
    assert err.strip() == (f"treue: no program {UNKNOWN} in the running twin (the twin's program is "
                           f"{twin.program}; `treue program list` shows them all)")
    assert items(twin) == before


def test_an_export_of_an_unknown_program_writes_no_file(twin, capsys, tmp_path):
    out_file = tmp_path / "journal.csv"
    code, out, err = treue(capsys, "finance", "export", "--program", UNKNOWN, "--from", "2026-11-01",
                           "--to", "2026-11-30", "--out", str(out_file), "--quiet", state_file=twin.state_file)
    assert code == 2 and out == "" and f"no program {UNKNOWN}" in err
    assert not out_file.exists()  # was: an empty journal, exit 0


@pytest.mark.parametrize("wrong", ["prg_xyz", "PRG_01JZZZZZZZZZZZZZZZZZZZZZZZ", "mbr_01jzzzzzzzzzzzzzzzzzzzzzzz",
                                   "prg_01jzzzzzzzzzzzzzzzzzzzzzz'", ""])
def test_a_malformed_program_id_is_exit_2(twin, capsys, wrong):
    before = items(twin)
    code, out, err = treue(capsys, "audit", "verify", "--program", wrong, state_file=twin.state_file)
    assert code == 2 and out == ""
    assert err.startswith(f"treue: {wrong!r} is not a program id (prg_ and 26 lower-case letters and digits)")
    assert twin.program in err and len(err.strip().splitlines()) == 1
    assert items(twin) == before


def test_the_program_defaults_to_the_twins(twin, capsys):
    code, out, err = treue(capsys, "audit", "verify", state_file=twin.state_file)
    assert code == 0, err
    verified = json.loads(out)
    assert verified["program_id"] == twin.program and verified["intact"] is True
    assert verified["records_checked"] >= 3  # the program's three keys
    explicit = json.loads(treue(capsys, "audit", "verify", "--program", twin.program,
                                state_file=twin.state_file)[1])
    assert explicit["records_checked"] == verified["records_checked"]
    code, out, err = treue(capsys, "key", "create", "--scope", "finance", state_file=twin.state_file)
    assert code == 0, err
    assert json.loads(out)["program_id"] == twin.program
    code, out, err = treue(capsys, "finance", "reconcile", "--date", now()[:10], state_file=twin.state_file)
    assert code == 0, err
    code, out, err = treue(capsys, "key", "create", "--program", twin.other, "--scope", "partner",
                           state_file=twin.state_file)  # another program: named with --program
    assert code == 0, err
    assert json.loads(out)["program_id"] == twin.other


def test_program_is_required_with_stack(capsys):
    code, out, err = treue(capsys, "--stack", "Treue", "audit", "verify")  # answered before any AWS call
    assert code == 2 and out == ""
    assert err.strip() == ("treue: --program is required with --stack (`treue --stack Treue program list` "
                           "shows the stack's programs)")


def test_a_twin_that_does_not_answer_is_said_so(twin, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    state = json.loads(twin.state_file.read_text())
    twin.state_file.write_text(json.dumps({**state, "aws_endpoint": f"http://127.0.0.1:{dead}"}))
    code, out, err = treue(capsys, "audit", "verify", state_file=twin.state_file)
    assert code == 1 and out == ""
    assert f"does not answer at http://127.0.0.1:{dead}" in err and "make run" in err


def test_no_twin_and_no_stack(tmp_path, capsys):
    code, out, err = treue(capsys, "audit", "verify", state_file=tmp_path / "local.json")
    assert code == 1 and out == ""
    assert "no twin runs here" in err and "make run" in err and "--stack" in err


def test_program_list_shows_every_program(twin, capsys):
    code, out, err = treue(capsys, "program", "list", state_file=twin.state_file)
    assert code == 0, err
    listed = json.loads(out)["programs"]
    assert [(p["program_id"], p["name"], p["currency"], p["country"]) for p in listed] == [
        (twin.program, "Demo Café", "EUR", None), (twin.other, "Other shop", "CHF", "CH")]
    assert [p["version"] for p in listed] == [1, 1]  # the settings' version, 1 as created


def test_version_is_the_packages(capsys):
    code, out, err = treue(capsys, "--version")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert code == 0 and out.strip() == f"treue {version}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version)


# ---------------------------------------------------------------- batch commands, over the API (treue.client)


@pytest.fixture
def api():
    from tests.unit.test_client import Server

    server = Server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _batch_csv(tmp_path: Path) -> Path:
    path = tmp_path / "thanks.csv"
    path.write_text("reference,item_id,face_value,email\nq4-1,kaffeekranz-eur,500,a@example.com\n"
                    "q4-2,kaffeekranz-eur,500,b@example.com\n")
    return path


def test_batch_submit_sends_the_file_under_its_hash_and_prints_the_batch(api, capsys, tmp_path):
    csv_file = _batch_csv(tmp_path)
    api.json(202, {"batch_id": "bat_1", "status": "queued", "lines": 2, "replayed": False, "rejected_lines": []})
    code, out, err = treue(capsys, "batch", "submit", str(csv_file), "--url", api.url, "--api-key", "trk_k",
                           "--no-wait")
    assert (code, err) == (0, "") and json.loads(out)["batch_id"] == "bat_1"
    method, path, headers, raw = api.requests[0]
    assert (method, path) == ("POST", "/prod/v1/batches") and headers["Authorization"] == "Bearer trk_k"
    assert headers["Idempotency-Key"] == "csv-" + hashlib.sha256(csv_file.read_bytes()).hexdigest()[:40]
    sent = json.loads(raw)
    assert sent == {"name": "thanks.csv", "partial": False, "lines": lines_from_csv(csv_file.read_text())}
    assert [line["reference"] for line in sent["lines"]] == ["q4-1", "q4-2"]


def test_batch_submit_refused_prints_the_problem_and_its_lines(api, capsys, tmp_path):
    csv_file = _batch_csv(tmp_path)
    api.json(422, {"type": "https://treue.dev/problems/batch-invalid", "title": "The batch is not valid",
                   "status": 422, "detail": "1 line is not valid",
                   "errors": [{"line": 2, "field": "item_id", "reason": "no such item"}]})
    code, out, err = treue(capsys, "batch", "submit", str(csv_file), "--url", api.url, "--api-key", "k", "--no-wait")
    assert (code, out) == (1, "")
    assert err == "treue: The batch is not valid: 1 line is not valid\n  line 2: item_id: no such item\n"
    api.json(409, {"type": "https://treue.dev/problems/idempotency-conflict", "title": "Conflict", "status": 409})
    code, out, err = treue(capsys, "batch", "submit", str(csv_file), "--url", api.url, "--api-key", "k", "--no-wait")
    assert code == 1 and "was already submitted (Idempotency-Key csv-" in err and "give --idempotency-key" in err


def test_batch_retry_follows_the_batch_through_a_storage_timeout(api, capsys):
    api.json(202, {"batch_id": "bat_1", "status": "queued"})
    api.json(503, {"type": "https://treue.dev/problems/storage-timeout", "title": "Storage", "status": 503},
             Retry_After="0")  # asked again (was: the command gave up)
    api.json(200, {"batch_id": "bat_1", "status": "completed", "lines": 2,
                   "counts": {"issued": 2, "failed": 0, "rejected": 0}})
    code, out, err = treue(capsys, "batch", "retry", "bat_1", "--url", api.url, "--api-key", "k", "--quiet")
    assert (code, err) == (0, "") and json.loads(out)["status"] == "completed"
    assert [(m, p) for m, p, _, _ in api.requests] == [("POST", "/prod/v1/batches/bat_1/retry"),
                                                       ("GET", "/prod/v1/batches/bat_1"),
                                                       ("GET", "/prod/v1/batches/bat_1")]
    api.json(409, {"type": "https://treue.dev/problems/nothing-to-retry", "title": "Nothing to retry",
                   "status": 409, "detail": "every line was issued"})
    code, out, err = treue(capsys, "batch", "retry", "bat_1", "--url", api.url, "--api-key", "k", "--quiet")
    assert (code, out, err) == (1, "", "treue: Nothing to retry: every line was issued\n")


def test_batch_commands_without_an_answer_say_so_in_one_line(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    code, out, err = treue(capsys, "batch", "retry", "bat_1", "--url", f"http://127.0.0.1:{dead}", "--api-key", "k")
    assert (code, out) == (1, "")
    assert err.startswith(f"treue: POST /v1/batches/bat_1/retry: no answer from http://127.0.0.1:{dead} (URLError: ")
    assert len(err.strip().splitlines()) == 1


def test_jobs_run_expires_one_programs_points_and_prints_what_it_did(twin, capsys):
    """``treue jobs run expire-points`` runs the scheduled job for --program only; again: nothing more."""
    from datetime import UTC, datetime, timedelta

    from treue.core import times
    from treue.logic import members, points
    from treue.logic import program as settings
    from treue.logic.models import Enrollment, Purchase
    from treue.logic.settings import ProgramPatch
    from treue.store.programs import ProgramStore

    for pid in (twin.program, twin.other):
        settings.change(ProgramStore(twin.store), pid, ProgramPatch(expiry={"policy": "rolling", "months": 1}),
                        None, "admin:test", now())
    old = times.iso(datetime.now(UTC) - timedelta(days=60))
    for pid, currency in ((twin.program, "EUR"), (twin.other, "CHF")):
        program = twin.store.get_program(pid)
        mid = members.enroll(twin.store, pid, Enrollment(external_id="m"), now())[0]["id"]
        points.accrue(twin.store, program, mid, Purchase(transaction_id="old", amount={"value": 2000,
                      "currency": currency}, occurred_at=old), "test", now())
    code, out, err = treue(capsys, "jobs", "run", "expire-points", state_file=twin.state_file)
    assert code == 0, err
    done = json.loads(out)
    assert (done["job"], done["program_id"], done["expired_points"], done["members"]) == (
        "expire-points", twin.program, 20, 1)
    assert json.loads(treue(capsys, "jobs", "run", "expire-points", state_file=twin.state_file)[1])[
        "expired_points"] == 0
    other = json.loads(treue(capsys, "jobs", "run", "expire-points", "--program", twin.other,
                             state_file=twin.state_file)[1])
    assert other["expired_points"] == 20  # the first runs left the other program alone
    code, out, err = treue(capsys, "jobs", "run", "activate-pending", "--as-of", "2026-01-01",
                           state_file=twin.state_file)
    assert code == 0 and json.loads(out)["as_of"].startswith("2026-01-01T23:59:59")


@pytest.mark.parametrize("as_of", ["2999-01-01", "01.12.2026", "yesterday"])
def test_jobs_run_refuses_a_future_or_malformed_as_of_with_exit_2(twin, capsys, as_of):
    code, out, err = treue(capsys, "jobs", "run", "expire-points", "--as-of", as_of, state_file=twin.state_file)
    assert code == 2 and out == "" and "--as-of" in err


def test_jobs_run_memberships_and_tier_review_answer_with_their_counts(twin, capsys):
    for job, counted in (("memberships", "ended"), ("tier-review", "downgraded")):
        code, out, err = treue(capsys, "jobs", "run", job, state_file=twin.state_file)
        assert code == 0, err
        done = json.loads(out)
        assert (done["job"], done["program_id"], done[counted]) == (job, twin.program, 0)
