"""The accrual queue's senders: IAM principal ids bound to one program each, by its admin keys."""

import pytest

from tests.integration.helpers import call
from tests.integration.test_accrual_queue import another_program
from treue import runtime
from treue.handlers import queue_senders

ROLE = "AROA3XFRBF535PLBIFPI4"
USER = "AIDAJQABLZS4A3QDU576Q"


def sender_call(program, sample, principal_id=None, body=None, scope="admin"):
    kw = {}
    if principal_id is not None:
        kw = {"path": f"/v1/queue-senders/{principal_id}", "path_parameters": {"principal_id": principal_id}}
    if body is not None:
        kw["body"] = body
    status, payload, _ = call(queue_senders, f"queue_senders/{sample}.json", program["auth"][scope], **kw)
    return status, payload


def put(program, principal_id, description="web shop order export", scope="admin"):
    return sender_call(program, "put_sender", principal_id, {"description": description}, scope)


def listed(program):
    status, payload = sender_call(program, "list_senders")
    assert status == 200
    return [(s["principal_id"], s["description"]) for s in payload["items"]]


def test_registering_a_sender_is_idempotent_and_updates_its_description(program):
    status, created = put(program, ROLE)
    assert status == 201
    assert created["principal_id"] == ROLE and created["description"] == "web shop order export"
    assert created["created_by"].startswith("admin:")
    assert put(program, ROLE) == (200, created)  # a retry answers the same binding
    status, updated = put(program, ROLE, "web shop (prod)")
    assert status == 200 and updated["description"] == "web shop (prod)"
    assert updated["created_at"] == created["created_at"]
    assert put(program, USER, "till 4")[0] == 201
    assert listed(program) == [("AIDAJQABLZS4A3QDU576Q", "till 4"), (ROLE, "web shop (prod)")]
    assert sender_call(program, "get_sender", ROLE) == (200, updated)


def test_a_principal_sends_for_one_program_only(program, store):
    other = another_program(store)
    assert put(program, ROLE)[0] == 201
    status, problem = put(other, ROLE, "taken over")
    assert status == 409 and problem["type"].endswith("/queue-sender-taken")
    assert program["program_id"] not in problem["detail"]  # the other program stays unnamed
    assert listed(other) == []
    assert runtime.queue_senders().get(ROLE)["program_id"] == program["program_id"]
    # the other program can neither read nor delete it
    assert sender_call(other, "get_sender", ROLE)[0] == 404
    status, problem = sender_call(other, "delete_sender", ROLE)
    assert status == 404 and problem["type"].endswith("/queue-sender-not-found")
    assert listed(program) == [(ROLE, "web shop order export")]
    # once its program deletes it, another program may register it
    assert sender_call(program, "delete_sender", ROLE) == (204, None)
    assert sender_call(program, "delete_sender", ROLE)[0] == 404
    assert listed(program) == []
    assert put(other, ROLE, "now theirs")[0] == 201
    assert runtime.queue_senders().get(ROLE)["program_id"] == other["program_id"]


@pytest.mark.parametrize("principal_id", [
    "arn:aws:iam::123456789012:root",  # an ARN
    f"{ROLE}:session-1",  # a role session: register the role
    "shop-sender",  # a role name
    "123456789012",  # an account
    "AKIAIOSFODNN7EXAMPLE",  # an access key id
    "aroa3xfrbf535plbifpi4",
    "AROA" + "X" * 200,
])
def test_a_principal_that_is_not_a_role_or_user_unique_id_is_refused_with_the_reason(program, principal_id):
    status, problem = put(program, principal_id)
    assert status == 422, problem
    assert problem["type"].endswith("/validation-failed") and "AROA" in problem["detail"]
    assert problem["errors"][0]["field"] == "principal_id"
    assert listed(program) == []


def test_a_role_arn_is_no_principal_id(program):
    # its slash makes it no route (API Gateway answers the same 404 problem); nothing is registered
    status, problem = put(program, "arn:aws:iam::123456789012:role/shop-sender")
    assert status == 404 and problem["type"].endswith("/no-such-route")
    assert listed(program) == []


@pytest.mark.parametrize("body", [{}, {"description": ""}, {"description": "x" * 201},
                                  {"description": "ok", "program_id": "prg_other"}])
def test_a_bad_body_is_a_422(program, body):
    status, problem = sender_call(program, "put_sender", ROLE, body)
    assert status == 422 and problem["type"].endswith("/validation-failed")
    assert listed(program) == []


@pytest.mark.parametrize("scope", ["partner", "finance"])
def test_only_admin_keys_manage_senders(program, scope):
    status, problem = put(program, ROLE, scope=scope)
    assert status == 403 and problem["type"].endswith("/forbidden")
    status, _ = sender_call(program, "list_senders", scope=scope)
    assert status == 403
    assert listed(program) == []


def test_registration_and_deletion_are_in_the_audit_trail(program):
    put(program, ROLE)
    sender_call(program, "delete_sender", ROLE)
    runtime.audit_trail().seal_program(program["program_id"])
    records = list(runtime.audit_trail().chain(program["program_id"]))
    actions = [(r["action"], r["subject_id"]) for r in records if r["subject_type"] == "queue_sender"]
    assert actions == [("queue_sender.registered", ROLE), ("queue_sender.deleted", ROLE)]
