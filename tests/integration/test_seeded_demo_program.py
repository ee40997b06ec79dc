"""The twin's demo program from a SEED: started afresh (the twin keeps its data in memory), the same seed
gives the same program id, key ids and keys, and the keys authenticate; another seed, or none, others."""

import boto3
from moto import mock_aws

from infra.twin.lambdas import MOTO_CONFIG
from tests.support import create_table
from treue.core import keys
from treue.core.ids import SeededSource
from treue.logic import provisioning
from treue.store.dynamodb import Store

REGION = "eu-central-1"


def _fresh_twin_program(seed: str | None) -> dict:
    """The demo program as a fresh twin creates it: a new, empty moto each time."""
    with mock_aws(config=MOTO_CONFIG):
        ddb = boto3.client("dynamodb", region_name=REGION)
        store = Store(create_table(ddb), ddb=ddb)
        created = provisioning.create_program(store, "Demo Café", "EUR", "2026-12-01T10:00:00Z", country="DE",
                                              source=SeededSource(seed) if seed else None)
        key_ids = {}
        for scope, key in created["api_keys"].items():
            key_id, secret = keys.parse(key)
            record = store.get_api_key(key_id)
            assert keys.verify(record, secret), scope
            assert (record.program_id, str(record.scope)) == (created["program_id"], scope)
            key_ids[scope] = key_id
        assert store.get_program(created["program_id"]).name == "Demo Café"
        return {**created, "key_ids": key_ids}


def test_the_same_seed_gives_the_same_program_and_keys_after_a_restart(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    first, restarted = _fresh_twin_program("demo"), _fresh_twin_program("demo")
    assert first == restarted
    assert first["program_id"].startswith("prg_") and set(first["api_keys"]) == {"partner", "finance", "admin"}


def test_another_seed_or_none_gives_other_ids_and_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    demo, other = _fresh_twin_program("demo"), _fresh_twin_program("other")
    random, random_again = _fresh_twin_program(None), _fresh_twin_program(None)
    programs = {p["program_id"] for p in (demo, other, random, random_again)}
    api_keys = {k for p in (demo, other, random, random_again) for k in p["api_keys"].values()}
    assert len(programs) == 4 and len(api_keys) == 12
