"""The twin's SEED: the demo program's id, key ids and keys derived from a word, the same every time;
without a seed, and everywhere else, ids and keys come from the OS CSPRNG."""

import base64

import pytest

from treue.core import ids, keys


def _generate(seed, program_id="prg_01kdvdna00fnjancvpsw1yez97", scope=keys.Scope.PARTNER):
    source = ids.SeededSource(seed) if seed else None
    return keys.generate(program_id, scope, "2026-12-01T00:00:00Z", source)


def test_a_seed_gives_the_same_ids_and_keys_every_time():
    assert ids.new_id("prg", ids.SeededSource("demo"), "program") == ids.new_id("prg", ids.SeededSource("demo"),
                                                                                  "program")
    first, again = _generate("demo"), _generate("demo")
    assert first == again
    plaintext, record = first
    assert keys.parse(plaintext) == (record.key_id, plaintext.rsplit("_", 1)[1])
    assert ids.well_formed(record.key_id, "key")


def test_other_seeds_labels_scopes_and_programs_give_other_values():
    made = {
        ids.new_id("prg", ids.SeededSource("demo"), "program"),
        ids.new_id("prg", ids.SeededSource("demo2"), "program"),
        ids.new_id("prg", ids.SeededSource("demo"), "other"),
    }
    assert len(made) == 3 and all(ids.well_formed(m, "prg") for m in made)
    keys_made = {_generate("demo")[0], _generate("Demo")[0], _generate("demo", scope=keys.Scope.ADMIN)[0],
                 _generate("demo", program_id="prg_01kdvdna00aaaaaaaaaaaaaaaaa")[0]}
    assert len(keys_made) == 4
    secrets_made = {k.rsplit("_", 1)[1] for k in keys_made}
    assert len(secrets_made) == 4


def test_a_seeded_secret_has_256_bits_like_a_random_one():
    seeded, _ = _generate("demo")
    random, _ = _generate(None)
    for key in (seeded, random):
        secret = keys.parse(key)[1]
        assert len(secret) == 43 and len(base64.urlsafe_b64decode(secret + "=")) == 32


def test_without_a_seed_every_id_and_key_is_new():
    assert len({_generate(None)[0] for _ in range(50)}) == 50
    assert len({ids.new_id("prg") for _ in range(50)}) == 50


def test_a_seed_is_a_word_not_nothing():
    with pytest.raises(ValueError):
        ids.SeededSource("")
