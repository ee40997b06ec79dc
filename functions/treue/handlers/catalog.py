"""Catalog function: the rewards a program offers, priced in its points. Answers from memory when warm."""


import base64
import binascii
import json
from typing import Annotated, Any, Literal

from treue import runtime
from treue.core import ids
from treue.core.programs import Program
from treue.errors import ItemNotFound, MalformedRequest, MemberNotFound
from treue.handlers.http import Query, caller, dispatch, make_app
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models.catalog import CatalogItem, CatalogPage
from treue.handlers.tracing import Tracer
from treue.logic import catalog

logger = Logger()
tracer = Tracer()
app = make_app("Catalog")


def _cursor(item_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": item_id}).encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor") from err
    if not isinstance(after, str):
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor")
    return after


def _discount(program: Program, member_id: str) -> catalog.TierDiscount | None:
    """The member's tier discount (404 for an unknown member); their TIER item is read only when the program
    has tiers."""
    store = runtime.store()
    if not ids.well_formed(member_id, "mbr") or store.get_member(program.id, member_id) is None:
        raise MemberNotFound(f"member {member_id[:40]} does not exist")
    return catalog.member_discount(store, program, member_id)


@tracer.capture_method
def list_catalog(
    type: Annotated[Literal["gift_card", "voucher", "charity"] | None, Query()] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Words that must all appear")] = None,
    max_points: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    member_id: Annotated[str | None, Query(max_length=64, description="Price the items for this member: their "
                                           "tier's catalog discount applied, the price before it shown too")] = None,
) -> CatalogPage:
    program = runtime.program(caller(app).program_id)
    discount = _discount(program, member_id) if member_id is not None else None
    after = _after(cursor) if cursor else ""
    page: list[dict[str, Any]] = []
    more = False
    items = runtime.parsed_catalog()
    for item_id in sorted(items):
        if item_id <= after:
            continue
        shown = catalog.present(items[item_id], program, discount)
        if shown is None or not catalog.matches(shown, type=type, country=country, currency=currency,
                                                 category=category, q=q, max_points=max_points):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(shown)
    return CatalogPage.model_validate({"items": page, "next_cursor": _cursor(page[-1]["id"]) if more else None})


@tracer.capture_method
def get_item(
    item_id: str,
    member_id: Annotated[str | None, Query(max_length=64, description="Price the item for this member (their "
                                           "tier's catalog discount)")] = None,
) -> CatalogItem:
    program = runtime.program(caller(app).program_id)
    discount = _discount(program, member_id) if member_id is not None else None
    item = runtime.parsed_catalog().get(item_id)
    shown = catalog.present(item, program, discount) if item else None
    if shown is None:
        raise ItemNotFound(f"catalog item {item_id[:64]} does not exist for this program", item_id=item_id[:64])
    return CatalogItem(**shown)


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
