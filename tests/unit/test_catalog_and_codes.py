"""Catalog files and models, pricing in points, voucher codes, order transitions."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.core.programs import Program
from treue.logic import catalog, codes
from treue.logic.orders import STATUSES, TRANSITIONS, sources_of

CATALOG = Path(__file__).resolve().parents[2] / "catalog"


def test_the_shipped_catalog_is_valid_and_broad_enough():
    _, items = catalog.load_dir(CATALOG)
    by_type = {t: [i for i in items if i.type == t] for t in ("gift_card", "voucher", "charity")}
    assert len(by_type["gift_card"]) >= 30 and len(by_type["voucher"]) >= 10 and len(by_type["charity"]) >= 8
    assert len({c for i in items for c in i.countries}) >= 5
    assert len({i.currency for i in items}) >= 4
    assert {d.kind for d in (v.discount for v in by_type["voucher"])} == {"fixed", "percent"}
    assert any(g.denominations for g in by_type["gift_card"]) and any(g.min_value for g in by_type["gift_card"])


def test_a_broken_catalog_file_names_the_file_the_item_and_the_field(tmp_path):
    doc = json.loads((CATALOG / "gift_cards.json").read_text())
    doc["items"][3]["fee"]["percent_bps"] = -5
    (tmp_path / "gift_cards.json").write_text(json.dumps(doc))
    with pytest.raises(catalog.CatalogError) as err:
        catalog.load_dir(tmp_path)
    assert str(err.value).startswith(f"gift_cards.json: item {doc['items'][3]['id']}: field fee.percent_bps:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"denominations": [1000], "min_value": 100, "max_value": 200}, "(item)"),
        ({"currency": "euro"}, "currency"),
        ({"expiry": {"policy": "months_after_issue"}}, "expiry"),
        ({"countries": []}, "countries"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_item_rules(tmp_path, change, field):
    doc = json.loads((CATALOG / "gift_cards.json").read_text())
    doc["items"] = [{**doc["items"][0], **change}]
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(catalog.CatalogError, match=re.escape(f"field {field}")):
        catalog.load_dir(tmp_path)


def test_duplicate_ids_across_files_are_refused(tmp_path):
    doc = json.loads((CATALOG / "charities.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(doc))
    with pytest.raises(catalog.CatalogError, match="already used in a.json"):
        catalog.load_dir(tmp_path)


def test_prices_round_up_and_use_the_programs_rate_and_markup():
    p = Program(id="prg_x", name="X", currency="EUR", value_points=10, value_minor=1, markup_bps=500,
                fx_ppm={"USD": 920_000})
    assert catalog.points_for(p, "EUR", 1000) == 10_500  # 10 points per cent, +5 %
    assert catalog.points_for(p, "USD", 1) == 10  # 0.92 cent × 10 × 1.05 = 9.66 → 10
    with pytest.raises(catalog.NotPriceable):
        catalog.points_for(p, "GBP", 1000)


def test_fees_round_up_to_the_cent():
    assert catalog.Fee(fixed=25, percent_bps=150).of(1001) == 25 + 16


@given(st.integers(min_value=0, max_value=16), st.sampled_from(codes.ALPHABET))
def test_the_check_character_catches_every_single_mistyped_character(position, replacement):
    code = codes.normalize(codes.new_voucher_code())
    if code[position] == replacement:
        return
    typo = code[:position] + replacement + code[position + 1 :]
    assert not codes.well_formed(typo)


def test_voucher_codes_carry_80_random_bits_and_mask_all_but_four():
    code = codes.new_voucher_code()
    assert codes.well_formed(code) and len(codes.normalize(code)) == 17
    assert codes.PAYLOAD_CHARS * 5 >= 80
    assert len({codes.new_voucher_code() for _ in range(1000)}) == 1000
    assert not set("01IO") & set(codes.ALPHABET)
    masked = codes.mask(code)
    assert masked[-4:] == code[-4:] and masked.count("*") == 13 and masked.count("-") == 3


def test_order_statuses_form_the_documented_machine():
    assert set(TRANSITIONS) == set(STATUSES)
    assert sources_of("FAILED") == ("PENDING", "PROCESSING", "ISSUED")
    assert sources_of("CANCELED") == ("COMPLETED",)
    assert TRANSITIONS["FAILED"] == TRANSITIONS["CANCELED"] == ()
