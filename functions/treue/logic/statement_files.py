"""A monthly statement (``treue.logic.statements.monthly``) as CSV and as a PDF a member can be sent.

Loaded only for those answers. The PDF is made with fpdf2 (imported on the first PDF only: it is not on the
Accrual function's cold start; the stack gives that function a layer with it, infra/layers.py), in English or
German: the programme, the member, the period, the summary, the closing balance per account and the month's
entries, dates and numbers written as the language writes them (1,234 points; 1.234 Punkte). It uses the PDF
core font Helvetica, whose Windows-1252 encoding has the German letters and the euro sign; any other character
of a name or reference (which the partner chose) is written as ``?``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from treue.core import times
from treue.logic.finance import to_csv
from treue.logic.program import decimals

LANGUAGES = ("en", "de")
# Countries whose members get a German statement unless the request says otherwise (lang, Accept-Language)
GERMAN_COUNTRIES = frozenset({"DE", "AT", "CH", "LI", "LU"})

CSV_COLUMNS = ("row", "created_at", "id", "type", "category", "change", "balance", "available", "pending", "held",
               "debt", "reference", "reason", "transaction_id", "return_id", "amount", "currency", "occurred_at",
               "expires_on", "available_at")


# ---------------------------------------------------------------- CSV


def csv_rows(statement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An ``opening`` row, one row per entry, a ``closing`` row. On an entry, ``change`` is what it changed of the
    member's points and ``available`` … ``debt`` its change of each account; on the opening and closing rows they
    are the balances then. ``balance`` is the member's points after the row."""
    rows: list[dict[str, Any]] = [{"row": "opening", "created_at": statement["start"], "change": None,
                                   "balance": statement["opening"], **statement["opening_accounts"]}]
    for entry in statement["entries"]:
        purchase = entry.get("purchase") or {}
        amount = purchase.get("amount") or {}
        rows.append({
            "row": "entry", **{k: entry.get(k) for k in ("created_at", "id", "type", "category", "change",
                                                         "balance", "pending", "held", "debt", "reference",
                                                         "reason", "return_id", "expires_on", "available_at")},
            "available": entry["points"], "transaction_id": purchase.get("transaction_id"),
            "amount": amount.get("value"), "currency": amount.get("currency"),
            "occurred_at": purchase.get("occurred_at"),
        })
    rows.append({"row": "closing", "created_at": statement["as_of"], "change": None,
                 "balance": statement["closing"], **statement["closing_accounts"]})
    return rows


def to_statement_csv(statement: Mapping[str, Any]) -> str:
    return to_csv(CSV_COLUMNS, csv_rows(statement))


# ---------------------------------------------------------------- language


def language(asked: str | None, accept_language: str | None, country: str) -> str:
    """``asked`` (the lang parameter); else the first of en and de in the caller's Accept-Language by its
    weight; else German for a programme in a German-speaking country, English otherwise."""
    if asked in LANGUAGES:
        return asked
    best: tuple[float, int, str] | None = None
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0 and (best is None or (weight, -index) > (best[0], best[1])):
            best = (weight, -index, primary)
    if best is not None:
        return best[2]
    return "de" if country.upper() in GERMAN_COUNTRIES else "en"


MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
}
TEXT = {
    "en": {
        "title": "Points statement", "member": "Member", "period": "Period", "currency": "Currency",
        "opening": "Opening balance", "earned": "Earned", "redeemed": "Redeemed", "expired": "Expired",
        "reversed": "Reversed (returns)", "adjusted": "Adjusted", "closing": "Closing balance",
        "of_which": "of which", "available": "available", "pending": "pending", "held": "held for orders",
        "debt": "owed", "points": "points", "date": "Date", "entry": "Entry", "change": "Points",
        "balance": "Balance", "none": "No entries this month.", "purchase": "Purchase", "of": "of",
        "valid_until": "valid until", "available_from": "available from", "page": "Page",
        "made": "Made", "returned": "Returned", "of_purchase": "of purchase",
    },
    "de": {
        "title": "Punkteauszug", "member": "Mitglied", "period": "Zeitraum", "currency": "Währung",
        "opening": "Anfangsbestand", "earned": "Gesammelt", "redeemed": "Eingelöst", "expired": "Verfallen",
        "reversed": "Zurückgebucht (Retouren)", "adjusted": "Korrigiert", "closing": "Endbestand",
        "of_which": "davon", "available": "verfügbar", "pending": "vorgemerkt", "held": "für Bestellungen reserviert",
        "debt": "geschuldet", "points": "Punkte", "date": "Datum", "entry": "Buchung", "change": "Punkte",
        "balance": "Bestand", "none": "Keine Buchungen in diesem Monat.", "purchase": "Einkauf", "of": "vom",
        "valid_until": "gültig bis", "available_from": "verfügbar ab", "page": "Seite",
        "made": "Erstellt", "returned": "Zurückgegeben", "of_purchase": "aus Einkauf",
    },
}
TYPES = {
    "en": {"earn": "Points earned", "adjustment": "Adjustment", "hold": "Reserved for an order",
           "capture": "Redeemed", "release": "Reservation released", "refund": "Refund of an order",
           "activation": "Pending points now available", "expiry": "Points expired", "reversal": "Return",
           "repayment": "Owed points repaid"},
    "de": {"earn": "Punkte gesammelt", "adjustment": "Korrektur", "hold": "Für eine Bestellung reserviert",
           "capture": "Eingelöst", "release": "Reservierung aufgehoben", "refund": "Erstattung einer Bestellung",
           "activation": "Vorgemerkte Punkte freigegeben", "expiry": "Punkte verfallen", "reversal": "Retoure",
           "repayment": "Geschuldete Punkte getilgt"},
}


def number(value: int, lang: str) -> str:
    """An integer with thousands separators: 1,234 (en), 1.234 (de); a minus sign in front when negative."""
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "de" else text


def signed(value: int, lang: str) -> str:
    return ("+" if value > 0 else "") + number(value, lang)


def points(value: int, lang: str) -> str:
    return f"{number(value, lang)} {TEXT[lang]['points']}"


def money(value: int, currency: str, lang: str) -> str:
    """Minor units as the language writes the amount: 1,234.50 EUR (en), 1.234,50 EUR (de)."""
    places = decimals(currency)
    whole, part = divmod(abs(value), 10 ** places)
    text = number(whole, lang) + ((("," if lang == "de" else ".") + f"{part:0{places}d}") if places else "")
    return f"{'-' if value < 0 else ''}{text} {currency}"


def day(value: str | date, lang: str) -> str:
    """A date (or the UTC day of a time stamp): 3 Nov 2026 (en), 03.11.2026 (de)."""
    found = value if isinstance(value, date) else (
        date.fromisoformat(value) if len(value) == 10 else times.parse(value).date())
    if lang == "de":
        return f"{found.day:02d}.{found.month:02d}.{found.year}"
    return f"{found.day} {MONTHS['en'][found.month - 1][:3]} {found.year}"


def long_day(value: date, lang: str) -> str:
    """1 November 2026 (en), 1. November 2026 (de)."""
    name = MONTHS[lang][value.month - 1]
    return f"{value.day}. {name} {value.year}" if lang == "de" else f"{value.day} {name} {value.year}"


def period(statement: Mapping[str, Any], lang: str) -> str:
    """The month's first day to its last (or to today for the month in progress)."""
    first = times.parse(statement["start"]).date()
    last = times.parse(statement["as_of"]).date()
    if times.parse(statement["as_of"]) >= times.parse(statement["end"]):
        last = times.parse(statement["end"]).date() - timedelta(days=1)
    return f"{long_day(first, lang)} - {long_day(last, lang)}"


def describe(entry: Mapping[str, Any], lang: str) -> str:
    """An entry's description: its type, reference, the purchase it came from, expiry and availability."""
    text = TEXT[lang]
    lines = [f"{TYPES[lang].get(entry['type'], entry['type'])} - {entry['reference']}"]
    purchase = entry.get("purchase")
    if purchase:
        amount = money(purchase["amount"]["value"], purchase["amount"]["currency"], lang)
        if entry.get("return_id"):
            line = f"{text['returned']} {amount} {text['of_purchase']} {purchase['transaction_id']}"
        else:
            line = f"{text['purchase']} {amount}"
            if purchase.get("occurred_at"):
                line += f" {text['of']} {day(purchase['occurred_at'], lang)}"
        lines.append(line)
    if entry.get("expires_on"):
        lines.append(f"{text['valid_until']} {day(entry['expires_on'], lang)}")
    if entry.get("available_at") and entry.get("pending"):
        lines.append(f"{text['available_from']} {day(entry['available_at'], lang)}")
    return "\n".join(lines)


def summary_lines(statement: Mapping[str, Any], lang: str) -> list[tuple[str, str]]:
    """The summary as (label, value) pairs: opening, each line of the month, closing, and the closing by account."""
    text = TEXT[lang]
    lines = [(text["opening"], points(statement["opening"], lang))]
    for key, sign in (("earned", 1), ("redeemed", -1), ("expired", -1), ("reversed", -1), ("adjusted", 1)):
        value = statement[key] * sign
        lines.append((text[key], signed(value, lang) if value else "0"))
    lines.append((text["closing"], points(statement["closing"], lang)))
    accounts = statement["closing_accounts"]
    for key in ("available", "pending", "held", "debt"):
        if accounts[key] or key == "available":
            value = -accounts[key] if key == "debt" else accounts[key]
            lines.append((f"   {text['of_which']} {text[key]}", number(value, lang)))
    return lines


# ---------------------------------------------------------------- PDF


def _latin(value: Any) -> str:
    """Text the core font can write (Windows-1252); anything else becomes ``?``."""
    return str(value).encode("cp1252", "replace").decode("cp1252")


def to_pdf(statement: Mapping[str, Any], lang: str, made_at: str) -> bytes:
    """The statement as a PDF (A4) in ``lang``."""
    from fpdf import FPDF  # only here: fpdf2, Pillow and fontTools are not on the Accrual function's cold start
    from fpdf.enums import XPos, YPos

    text = TEXT[lang]
    programme = _latin(statement["program"]["name"])
    footer = _latin(f"{programme} - {text['title']} {statement['month']} - {text['made']} {day(made_at, lang)}")

    class Statement(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.set_text_color(110)
            self.cell(0, 5, footer, align="L")
            self.cell(0, 5, f"{text['page']} {self.page_no()}/{{nb}}", align="R")

    pdf = Statement(format="A4")
    pdf.core_fonts_encoding = "windows-1252"  # the core fonts' WinAnsiEncoding: fpdf2 writes Latin-1 by default
    pdf.set_title(_latin(f"{text['title']} {statement['month']}"))
    pdf.set_author(programme)
    pdf.set_creator("Treue")
    pdf.set_lang(lang)
    pdf.set_creation_date(times.parse(made_at))
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, programme, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 7, _latin(f"{text['title']} {MONTHS[lang][int(statement['month'][5:]) - 1]} "
                          f"{statement['month'][:4]}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    member = statement["member_id"]
    if statement.get("member_name"):
        member = f"{statement['member_name']} ({member})"
    for label, value in ((text["member"], member), (text["period"], period(statement, lang))):
        pdf.cell(30, 6, _latin(label))
        pdf.cell(0, 6, _latin(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    with pdf.table(col_widths=(110, 64), text_align=("LEFT", "RIGHT"), first_row_as_headings=False,
                   borders_layout="HORIZONTAL_LINES", width=174, align="LEFT", line_height=6) as table:
        for label, value in summary_lines(statement, lang):
            bold = label in (text["opening"], text["closing"])
            row = table.row()
            row.cell(_latin(label), style=_bold() if bold else None)
            row.cell(_latin(value), style=_bold() if bold else None)
    pdf.ln(6)
    if not statement["entries"]:
        pdf.cell(0, 6, _latin(text["none"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        with pdf.table(col_widths=(24, 100, 25, 25), text_align=("LEFT", "LEFT", "RIGHT", "RIGHT"),
                       borders_layout="HORIZONTAL_LINES", width=174, align="LEFT", line_height=5,
                       repeat_headings=1) as table:
            table.row([_latin(text[k]) for k in ("date", "entry", "change", "balance")])
            for entry in statement["entries"]:
                table.row([day(entry["created_at"], lang), _latin(describe(entry, lang)),
                           signed(entry["change"], lang), number(entry["balance"], lang)])
    return bytes(pdf.output())


def _bold() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD")


def file_name(statement: Mapping[str, Any], extension: str) -> str:
    return f"statement-{statement['member_id']}-{statement['month']}.{extension}"
