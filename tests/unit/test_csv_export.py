"""Every CSV the API answers is written by finance.to_csv: text cells cannot run as formulas."""

import csv
import io

import pytest

from treue.logic import finance


@pytest.mark.parametrize("text", ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A9)",
                                  "\tcmd", "\rcmd", "=cmd|' /C calc'!A0"])
def test_text_cells_that_start_like_a_formula_are_quoted(text):
    out = finance.to_csv(["reference", "points"], [{"reference": text, "points": 5}])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1] == ["'" + text, "5"]


def test_integer_columns_keep_their_sign_and_plain_text_is_unchanged():
    out = finance.to_csv(["reference", "points", "face_value", "note"],
                         [{"reference": "order-1", "points": -2500, "face_value": -1, "note": None},
                          {"reference": "a=b", "points": 0, "face_value": 12_345, "note": "café, 'quoted'"}])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["reference", "points", "face_value", "note"], ["order-1", "-2500", "-1", ""],
                    ["a=b", "0", "12345", "café, 'quoted'"]]
