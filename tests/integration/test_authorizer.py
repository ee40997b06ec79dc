import copy

import pytest

from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import keys
from treue.handlers import authorizer


def authorize(header):
    event = copy.deepcopy(load_event("authorizer/request.json"))
    event["headers"] = {"authorization": header} if header is not None else {}
    return authorizer.handler(event, LambdaContext())


def test_a_valid_key_yields_the_program_and_scope_as_context(program):
    result = authorize(f"Bearer {program['api_keys']['finance']}")
    assert result["context"] == {
        "program_id": program["program_id"],
        "key_id": keys.parse(program["api_keys"]["finance"])[0],
        "scope": "finance",
    }
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Resource"].endswith("abc123/prod/*/*")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer trk_key_unknown_x", "Bearer nonsense"])
def test_missing_or_malformed_keys_are_unauthorized(program, header):
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(header)


def test_a_wrong_secret_is_unauthorized(program):
    key = program["api_keys"]["partner"]
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(f"Bearer {key[:-2]}xx")


def test_revoked_keys_are_unauthorized_at_once(program, store):
    key = program["api_keys"]["partner"]
    assert authorize(f"Bearer {key}")
    assert store.revoke_api_key(keys.parse(key)[0], runtime.now())
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorize(f"Bearer {key}")
    assert not store.revoke_api_key("key_doesnotexist", runtime.now())
