from tests.integration.helpers import call, enroll
from treue.core.ids import luhn_valid
from treue.handlers import enrollment


def test_enrollment_issues_a_luhn_card_number_and_a_qr_token(program):
    status, member, raw = enroll(program["auth"]["partner"], {"email": "ada@example.com", "name": "Ada"})
    assert status == 201
    assert member["id"].startswith("mbr_") and raw["multiValueHeaders"]["Location"] == [f"/v1/members/{member['id']}"]
    assert luhn_valid(member["card_number"]) and len(member["card_number"]) == 16
    assert member["qr_token"].startswith("qr_")
    assert member["program_id"] == program["program_id"]


def test_a_taken_identifier_is_409_naming_the_member(program):
    auth = program["auth"]["partner"]
    _, first, _ = enroll(auth, {"email": "ada@example.com"})
    status, problem, raw = enroll(auth, {"phone": "+4915112345678", "email": "ADA@example.com"})
    assert status == 409
    assert raw["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert problem["type"].endswith("/identifier-taken")
    assert problem["member_id"] == first["id"] and problem["identifier"] == "email"
    # nothing of the refused enrollment was written: the phone is still free
    status, _, _ = enroll(auth, {"phone": "+4915112345678"})
    assert status == 201


def test_partner_card_numbers_are_kept(program):
    status, member, _ = enroll(program["auth"]["partner"], {"card_number": "1234 5678 90", "external_id": "crm-1"})
    assert status == 201 and member["card_number"] == "1234567890" and member["external_id"] == "crm-1"


def test_idempotency_key_replays_the_first_member_and_refuses_a_different_body(program):
    auth = program["auth"]["partner"]
    s1, m1, _ = enroll(auth, {"email": "bob@example.com"}, headers={"Idempotency-Key": "enroll-bob"})
    s2, m2, _ = enroll(auth, {"email": "bob@example.com"}, headers={"Idempotency-Key": "enroll-bob"})
    s3, p3, _ = enroll(auth, {"email": "eve@example.com"}, headers={"Idempotency-Key": "enroll-bob"})
    assert (s1, s2, s3) == (201, 200, 409)
    assert m1 == m2
    assert p3["type"].endswith("/idempotency-conflict")


def test_lookup_by_every_identifier(program):
    auth = program["auth"]["finance"]
    _, m, _ = enroll(program["auth"]["partner"], {"email": "ada@example.com", "phone": "+14155550100",
                                                  "external_id": "crm-42"})
    for kind in ("email", "phone", "card_number", "external_id", "qr_token"):
        value = m[kind].upper() if kind == "email" else m[kind]
        status, found, _ = call(enrollment, "enrollment/find_member.json", auth, query={kind: value})
        assert status == 200 and [i["id"] for i in found["items"]] == [m["id"]], kind
    status, found, _ = call(enrollment, "enrollment/find_member.json", auth, query={"email": "nobody@example.com"})
    assert status == 200 and found == {"items": [], "next_cursor": None}


def test_lookup_needs_exactly_one_valid_identifier(program):
    auth = program["auth"]["partner"]
    for query in ({}, {"email": "a@example.com", "phone": "+14155550100"}, {"phone": "12"}):
        status, problem, _ = call(enrollment, "enrollment/find_member.json", auth, query=query)
        assert status == 400 and problem["type"].endswith("/malformed-request"), query


def test_a_member_of_another_program_does_not_exist(program, store):
    from treue import runtime
    from treue.logic import provisioning

    _, m, _ = enroll(program["auth"]["partner"], {"email": "ada@example.com"})
    other = provisioning.create_program(store, "Other", "EUR", runtime.now())
    from treue.core import keys

    auth_b = {"program_id": other["program_id"], "key_id": keys.parse(other["api_keys"]["partner"])[0],
              "scope": "partner"}
    status, problem, _ = call(enrollment, "enrollment/get_member.json", auth_b,
                              path=f"/v1/members/{m['id']}", path_parameters={"member_id": m["id"]})
    assert status == 404 and problem["type"].endswith("/member-not-found")
    status, found, _ = call(enrollment, "enrollment/find_member.json", auth_b, query={"email": "ada@example.com"})
    assert found["items"] == []
    # and program B may enroll the same email for itself
    assert enroll(auth_b, {"email": "ada@example.com"})[0] == 201


def test_finance_keys_cannot_enroll(program):
    status, problem, _ = enroll(program["auth"]["finance"], {"email": "ada@example.com"})
    assert status == 403 and problem["type"].endswith("/forbidden")
