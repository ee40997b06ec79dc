"""A typed Python client of Treue's partner API: one method per operation of the OpenAPI document.

    from treue.client import ApiError, TreueClient

    treue = TreueClient("https://<api-id>.execute-api.<region>.amazonaws.com/prod", "trk_…")
    member = treue.enroll_member({"email": "ada@example.com"})
    try:
        treue.create_order({"member_id": member["id"], "item_id": "nordlicht-books-eur", "denomination": 2500,
                            "delivery": {"method": "email"}})
    except ApiError as problem:
        print(problem.status, problem.type, problem.detail)

Each method is named after its operation's ``operationId`` in snake_case (``enrollMember`` →
``enroll_member``): path parameters are its positional arguments, then the body (a dict, or a pydantic
model of the request), query parameters are keyword arguments (``from`` is ``from_``). An operation that
takes an ``Idempotency-Key`` has an ``idempotency_key`` argument; one is generated when none is given, so
a retry of the call itself is safe, but to retry a call that raised, pass the key you used.

An answer is its JSON object as a dict (:class:`Answer`, with ``status`` and ``headers``); operations that
offer CSV have a ``…_csv`` twin that sends ``Accept: text/csv`` and answers the text (:class:`CsvAnswer`).
A problem+json answer (any status from 400) raises :class:`ApiError` (status, type, title, detail, errors
and the whole problem); no answer at all raises :class:`ApiUnreachable`. ``429`` (the program's rate
limit, refused before anything ran) and ``503`` (an AWS service did not answer in time) are retried up to
``retries`` times after ``Retry-After`` seconds (at most ``max_retry_wait`` each): a 503 only for reads,
``PUT``/``DELETE`` and writes that are idempotent by their key or body.

Standard library only (``urllib``): it adds no dependency, and no Lambda function imports it.
``tests/unit/test_client.py`` checks every method against ``openapi.json``.
"""

from __future__ import annotations

import email.message
import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol, TypeAlias

__all__ = ["Answer", "ApiError", "ApiUnreachable", "CsvAnswer", "Response", "TreueClient"]

USER_AGENT = "treue-client (Python urllib)"
RETRYABLE = (429, 503)


class RequestModel(Protocol):
    """A pydantic model of a request body (``treue.logic.models``), sent as its JSON dump."""

    def model_dump(self, *, mode: str = ..., by_alias: bool = ..., exclude_unset: bool = ...) -> dict[str, Any]: ...


Body: TypeAlias = Mapping[str, Any] | RequestModel


class Answer(dict[str, Any]):
    """An operation's JSON answer: the object itself, plus the HTTP ``status`` and ``headers``."""

    def __init__(self, body: Any, status: int, headers: email.message.Message) -> None:
        super().__init__(body if isinstance(body, Mapping) else {})
        self.status = status
        self.headers = headers


class CsvAnswer(str):
    """A CSV answer (``Accept: text/csv``): the text, plus the HTTP ``status`` and ``headers``."""

    status: int
    headers: email.message.Message

    def __new__(cls, text: str, status: int, headers: email.message.Message) -> CsvAnswer:
        answer = super().__new__(cls, text)
        answer.status = status
        answer.headers = headers
        return answer


@dataclass(frozen=True)
class Response:
    """One HTTP answer as it came: status, headers (case-insensitive), the body parsed (JSON, the text of
    CSV or anything else, ``None`` when empty) and its bytes."""

    status: int
    headers: email.message.Message
    body: Any
    raw: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


class ApiError(Exception):
    """The API answered a problem (RFC 9457 problem+json, or any other answer from 400 on).

    ``type``, ``title``, ``detail`` and ``errors`` (one ``{location, field, reason}`` per failing field)
    are the problem's; ``problem`` is all of it (some carry more, e.g. ``report_request``).
    """

    def __init__(self, method: str, path: str, response: Response) -> None:
        body = response.body
        problem: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {}
        self.method = method
        self.path = path
        self.status = response.status
        self.headers = response.headers
        self.body = body
        self.problem = problem
        self.type = str(problem.get("type") or "about:blank")
        self.title = str(problem.get("title") or problem.get("message") or _reason(response.status))
        detail = problem.get("detail")
        if detail is None and not problem and body not in (None, ""):
            detail = str(body)
        self.detail = "" if detail is None else str(detail)
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = list(errors) if isinstance(errors, list) else []
        self.retry_after = _retry_after(response.headers)
        super().__init__(f"{method} {path} answered {self.status} {self.type} ({self.title})"
                         + (f": {self.detail}" if self.detail else ""))


class ApiUnreachable(Exception):
    """No answer: the connection was refused or reset, timed out, or the answer was cut short.
    ``reason`` is the exception that says why."""

    def __init__(self, method: str, path: str, url: str, reason: BaseException) -> None:
        self.method, self.path, self.url, self.reason = method, path, url, reason
        super().__init__(f"{method} {path}: no answer from {url} ({type(reason).__name__}: {_why(reason)})")


def _why(err: BaseException) -> object:
    return getattr(err, "reason", None) or err


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _retry_after(headers: email.message.Message) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), ``None`` when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_body(body: Body) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _parse(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if content_type == "text/csv":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


class TreueClient:
    """Treue's partner API at ``base_url`` (the stage URL, or the twin's root) with one API key.

    ``timeout`` is per attempt, in seconds. ``retries``: how often a 429 or 503 is asked again (0: never);
    ``max_retry_wait`` bounds each wait (``Retry-After``, else 1 s). ``retry_writes=False`` retries reads only.
    """

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 30.0, retries: int = 2,
                 max_retry_wait: float = 5.0, retry_writes: bool = True, user_agent: str = USER_AGENT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.retry_writes = retry_writes
        self.user_agent = user_agent
        self._sleep = sleep

    def __repr__(self) -> str:  # never the key
        return f"TreueClient({self.base_url!r})"

    # ------------------------------------------------------------------ the HTTP layer

    def send(self, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
             headers: Mapping[str, str] | None = None, timeout: float | None = None) -> Response:
        """One request, as given (``path`` with its query string), its answer whatever the status: no
        retry, no :class:`ApiError`. :class:`ApiUnreachable` when nothing answers."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"User-Agent": self.user_agent}
        if data is not None:
            sent["Content-Type"] = "application/json"
        if self.api_key:
            sent["Authorization"] = f"Bearer {self.api_key}"
        sent.update(headers or {})
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)
        try:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout if timeout is None else timeout) as r:
                    status, payload, answer_headers = r.status, r.read(), r.headers
            except urllib.error.HTTPError as err:
                status, payload, answer_headers = err.code, err.read(), err.headers
        except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out, cut short
            raise ApiUnreachable(method, path, self.base_url, err) from err
        content_type = (answer_headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return Response(status, answer_headers, _parse(payload, content_type), payload)

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
                headers: Mapping[str, str] | None = None, accept: str = "application/json",
                idempotent: bool | None = None, timeout: float | None = None) -> Response:
        """``method path`` with the ``query`` parameters that are not ``None``: its answer when below 400,
        else :class:`ApiError`. A 429 is asked again; a 503 when ``idempotent`` (default: every method
        but POST, and a POST with an ``Idempotency-Key``)."""
        pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
                 if v is not None]
        target = path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")
        sent = {"Accept": accept, **(headers or {})}
        if idempotent is None:
            idempotent = method != "POST" or any(k.lower() == "idempotency-key" for k in sent)
        for attempt in range(self.retries + 1):
            response = self.send(method, target, body=body, headers=sent, timeout=timeout)
            if response.status < 400:
                return response
            again = method == "GET" or (self.retry_writes and (response.status == 429 or idempotent))
            if attempt == self.retries or response.status not in RETRYABLE or not again:
                break
            wait = _retry_after(response.headers)
            self._sleep(min(self.max_retry_wait, 1.0 if wait is None else wait))
        raise ApiError(method, target, response)

    def _json(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Body | None = None,
              key: str | None = None, idempotent: bool | None = None) -> Answer:
        headers = {"Idempotency-Key": key} if key is not None else None
        response = self.request(method, path, query=query, body=None if body is None else _json_body(body),
                                headers=headers, idempotent=idempotent)
        return Answer(response.body, response.status, response.headers)

    def _csv(self, path: str, query: Mapping[str, Any] | None = None) -> CsvAnswer:
        response = self.request("GET", path, query=query, accept="text/csv")
        text = response.body if isinstance(response.body, str) else response.raw.decode("utf-8", errors="replace")
        return CsvAnswer(text, response.status, response.headers)

    @staticmethod
    def _key(given: str | None) -> str:
        return given if given is not None else str(uuid.uuid4())

    def upload_batch_file(self, upload: Mapping[str, Any], data: bytes, *, timeout: float = 300.0) -> int:
        """PUT a batch CSV to the pre-signed URL of :meth:`create_batch_upload`'s answer (S3, not the API:
        no API key); the answer's status. Then :meth:`submit_batch` with ``{"upload_id": …}``."""
        request = urllib.request.Request(upload["url"], data=data, method=upload.get("method") or "PUT",
                                         headers=dict(upload.get("headers") or {}))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return int(r.status)
        except urllib.error.HTTPError as err:
            raise ApiError("PUT", "(the upload URL)", Response(err.code, err.headers, _parse(
                err.read(), ""), b"")) from None
        except (OSError, http.client.HTTPException) as err:
            raise ApiUnreachable("PUT", "(the upload URL)", "S3", err) from err

    # ------------------------------------------------------------------ Members

    def enroll_member(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/members`` (enrollMember): 201 with the member; the same key and body answer it again (200)."""
        return self._json("POST", "/v1/members", body=body, key=self._key(idempotency_key))

    def find_member(self, *, email: str | None = None, phone: str | None = None, card_number: str | None = None,
                    external_id: str | None = None, qr_token: str | None = None,
                    referral_code: str | None = None) -> Answer:
        """``GET /v1/members`` (findMember) by exactly one identifier."""
        return self._json("GET", "/v1/members", {"email": email, "phone": phone, "card_number": card_number,
                                                 "external_id": external_id, "qr_token": qr_token,
                                                 "referral_code": referral_code})

    def get_member(self, member_id: str) -> Answer:
        """``GET /v1/members/{member_id}`` (getMember)."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}")

    def list_member_referrals(self, member_id: str, *, limit: int | None = None, cursor: str | None = None
                              ) -> Answer:
        """``GET /v1/members/{member_id}/referrals`` (listMemberReferrals): the member's referral code, who
        referred them, and the members they referred (pending or completed with the points), newest first."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/referrals", {"limit": limit, "cursor": cursor})

    # ------------------------------------------------------------------ Points

    def accrue_purchase(self, member_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/purchases`` (accruePurchase): exactly once per ``transaction_id``."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/purchases", body=body, idempotent=True)

    def record_member_activity(self, member_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/activities`` (recordMemberActivity): ``{type, reference, occurred_at}`` →
        the points the activity rules pay; exactly once per ``reference`` (0 points with the reason when none)."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/activities", body=body, idempotent=True)

    def record_member_return(self, member_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/returns`` (recordMemberReturn): ``{return_id, transaction_id, lines |
        amount, occurred_at}`` → the points the returned part earned, reversed; exactly once per ``return_id``."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/returns", body=body, idempotent=True)

    def adjust_member_points(self, member_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/adjustments`` (adjustMemberPoints, admin): idempotent by ``reference``."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/adjustments", body=body, idempotent=True)

    def get_member_balance(self, member_id: str) -> Answer:
        """``GET /v1/members/{member_id}/balance`` (getMemberBalance)."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/balance")

    def get_member_tier(self, member_id: str) -> Answer:
        """``GET /v1/members/{member_id}/tier`` (getMemberTier): the tier, progress, what keeps it, the projection;
        404 ``tiers-not-configured`` for a program without tiers."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/tier")

    def start_membership(self, member_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/memberships`` (startMembership): ``{plan_id, payment_reference,
        starts_at?}`` → the active membership; exactly once per ``payment_reference``."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/memberships", body=body, idempotent=True)

    def list_memberships(self, member_id: str) -> Answer:
        """``GET /v1/members/{member_id}/memberships`` (listMemberships): the member's memberships, oldest first."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/memberships")

    def renew_membership(self, member_id: str, membership_id: str, body: Body) -> Answer:
        """``POST /v1/members/{member_id}/memberships/{membership_id}/renew`` (renewMembership):
        ``{payment_reference}`` → one more period; exactly once per ``payment_reference``."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/memberships/{_seg(membership_id)}/renew",
                          body=body, idempotent=True)

    def cancel_membership(self, member_id: str, membership_id: str) -> Answer:
        """``POST /v1/members/{member_id}/memberships/{membership_id}/cancel`` (cancelMembership): it ends at its
        period's end; canceling again changes nothing."""
        return self._json("POST", f"/v1/members/{_seg(member_id)}/memberships/{_seg(membership_id)}/cancel",
                          idempotent=True)

    def get_member_ledger(self, member_id: str, *, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/members/{member_id}/ledger`` (getMemberLedger): the statement, newest first."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/ledger", {"limit": limit, "cursor": cursor})

    def get_member_monthly_statement(self, member_id: str, *, month: str, format: str | None = None,
                                     lang: str | None = None) -> Answer:
        """``GET /v1/members/{member_id}/statement`` (getMemberMonthlyStatement): the month's (``YYYY-MM``)
        opening, earned, redeemed, expired, reversed, adjusted, closing and entries. For the PDF:
        ``request("GET", path, query={"month": …}, accept="application/pdf").raw``."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/statement",
                          {"month": month, "format": format, "lang": lang})

    def get_member_monthly_statement_csv(self, member_id: str, *, month: str, format: str | None = None,
                                         lang: str | None = None) -> CsvAnswer:
        """The same as CSV: an opening row, the month's entries and a closing row."""
        return self._csv(f"/v1/members/{_seg(member_id)}/statement", {"month": month, "format": format,
                                                                      "lang": lang})

    def simulate_purchase(self, body: Body) -> Answer:
        """``POST /v1/rules/simulate`` (simulatePurchase): a purchase and its ``member_id`` → what it would earn
        now, per rule and line; nothing is posted (safe to repeat)."""
        return self._json("POST", "/v1/rules/simulate", body=body, idempotent=True)

    # ------------------------------------------------------------------ Catalog

    def list_catalog_items(self, *, type: str | None = None, country: str | None = None,
                           currency: str | None = None, category: str | None = None, q: str | None = None,
                           max_points: int | None = None, limit: int | None = None,
                           cursor: str | None = None, member_id: str | None = None) -> Answer:
        """``GET /v1/catalog`` (listCatalogItems), priced in the program's points (with ``member_id``: the
        member's, their tier's catalog discount applied)."""
        return self._json("GET", "/v1/catalog", {"type": type, "country": country, "currency": currency,
                                                 "category": category, "q": q, "max_points": max_points,
                                                 "limit": limit, "cursor": cursor, "member_id": member_id})

    def get_catalog_item(self, item_id: str, *, member_id: str | None = None) -> Answer:
        """``GET /v1/catalog/{item_id}`` (getCatalogItem), priced for ``member_id`` when given."""
        return self._json("GET", f"/v1/catalog/{_seg(item_id)}", {"member_id": member_id})

    # ------------------------------------------------------------------ Orders and donations

    def create_order(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/orders`` (createOrder): 202, the payout runs; the same key and body answer it again."""
        return self._json("POST", "/v1/orders", body=body, key=self._key(idempotency_key))

    def get_order(self, order_id: str) -> Answer:
        """``GET /v1/orders/{order_id}`` (getOrder)."""
        return self._json("GET", f"/v1/orders/{_seg(order_id)}")

    def list_member_orders(self, member_id: str, *, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/members/{member_id}/orders`` (listMemberOrders), newest first."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/orders", {"limit": limit, "cursor": cursor})

    def cancel_order(self, order_id: str, body: Body) -> Answer:
        """``POST /v1/orders/{order_id}/cancel`` (cancelOrder) where its policy allows; refunds the points."""
        return self._json("POST", f"/v1/orders/{_seg(order_id)}/cancel", body=body)

    def reveal_order_codes(self, order_id: str) -> Answer:
        """``GET /v1/orders/{order_id}/codes`` (revealOrderCodes): the codes in clear (recorded)."""
        return self._json("GET", f"/v1/orders/{_seg(order_id)}/codes")

    def get_donation(self, donation_id: str) -> Answer:
        """``GET /v1/donations/{donation_id}`` (getDonation): the receipt."""
        return self._json("GET", f"/v1/donations/{_seg(donation_id)}")

    def get_donation_totals(self) -> Answer:
        """``GET /v1/donations/totals`` (getDonationTotals)."""
        return self._json("GET", "/v1/donations/totals")

    # ------------------------------------------------------------------ Vouchers

    def validate_voucher(self, body: Body) -> Answer:
        """``POST /v1/vouchers/validate`` (validateVoucher): value, status, expiry."""
        return self._json("POST", "/v1/vouchers/validate", body=body, idempotent=True)

    def redeem_voucher(self, body: Body) -> Answer:
        """``POST /v1/vouchers/redeem`` (redeemVoucher): single use; idempotent by ``reference``."""
        return self._json("POST", "/v1/vouchers/redeem", body=body, idempotent=True)

    def void_voucher(self, body: Body) -> Answer:
        """``POST /v1/vouchers/void`` (voidVoucher)."""
        return self._json("POST", "/v1/vouchers/void", body=body)

    # ------------------------------------------------------------------ Finance

    def create_funding(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/finance/fundings`` (createFunding, admin): 201, a replay 200."""
        return self._json("POST", "/v1/finance/fundings", body=body, key=self._key(idempotency_key))

    def record_cash_refund(self, body: Body) -> Answer:
        """``POST /v1/finance/cash-refunds`` (recordCashRefund, admin): ``{order_id, reference}``, the owed-back cash
        of a failed or canceled points + cash order paid back; 201, the same again 200 (once per order)."""
        return self._json("POST", "/v1/finance/cash-refunds", body=body, idempotent=True)

    def get_budget(self, *, currency: str | None = None, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/finance/budget`` (getBudget): balances per currency and the movements."""
        return self._json("GET", "/v1/finance/budget", {"currency": currency, "limit": limit, "cursor": cursor})

    def get_budget_csv(self, *, currency: str | None = None, limit: int | None = None,
                       cursor: str | None = None) -> CsvAnswer:
        """``GET /v1/finance/budget`` (getBudget) as CSV."""
        return self._csv("/v1/finance/budget", {"currency": currency, "limit": limit, "cursor": cursor})

    def set_budget_threshold(self, currency: str, body: Body) -> Answer:
        """``PUT /v1/finance/budget/{currency}`` (setBudgetThreshold, admin)."""
        return self._json("PUT", f"/v1/finance/budget/{_seg(currency)}", body=body)

    def list_payouts(self, *, from_: str | None = None, to: str | None = None, limit: int | None = None,
                     cursor: str | None = None) -> Answer:
        """``GET /v1/finance/payouts`` (listPayouts)."""
        return self._json("GET", "/v1/finance/payouts", {"from": from_, "to": to, "limit": limit, "cursor": cursor})

    def list_payouts_csv(self, *, from_: str | None = None, to: str | None = None, limit: int | None = None,
                         cursor: str | None = None) -> CsvAnswer:
        """``GET /v1/finance/payouts`` (listPayouts) as CSV."""
        return self._csv("/v1/finance/payouts", {"from": from_, "to": to, "limit": limit, "cursor": cursor})

    def get_journal(self, *, from_: str | None = None, to: str | None = None, limit: int | None = None,
                    cursor: str | None = None) -> Answer:
        """``GET /v1/finance/journal`` (getJournal): point postings and budget movements."""
        return self._json("GET", "/v1/finance/journal", {"from": from_, "to": to, "limit": limit, "cursor": cursor})

    def get_journal_csv(self, *, from_: str | None = None, to: str | None = None, limit: int | None = None,
                        cursor: str | None = None) -> CsvAnswer:
        """``GET /v1/finance/journal`` (getJournal) as CSV."""
        return self._csv("/v1/finance/journal", {"from": from_, "to": to, "limit": limit, "cursor": cursor})

    def get_trial_balance(self) -> Answer:
        """``GET /v1/finance/trial-balance`` (getTrialBalance)."""
        return self._json("GET", "/v1/finance/trial-balance")

    def get_trial_balance_csv(self) -> CsvAnswer:
        """``GET /v1/finance/trial-balance`` (getTrialBalance) as CSV."""
        return self._csv("/v1/finance/trial-balance")

    def get_liability(self) -> Answer:
        """``GET /v1/finance/liability`` (getLiability)."""
        return self._json("GET", "/v1/finance/liability")

    def get_liability_csv(self) -> CsvAnswer:
        """``GET /v1/finance/liability`` (getLiability) as CSV."""
        return self._csv("/v1/finance/liability")

    def get_reconciliation(self, *, date: str) -> Answer:
        """``GET /v1/finance/reconciliation`` (getReconciliation) of one UTC day; too large a day raises the
        422 ``report-too-large`` problem, whose ``problem["report_request"]`` is the report job to create."""
        return self._json("GET", "/v1/finance/reconciliation", {"date": date})

    def get_reconciliation_csv(self, *, date: str) -> CsvAnswer:
        """``GET /v1/finance/reconciliation`` (getReconciliation) as CSV."""
        return self._csv("/v1/finance/reconciliation", {"date": date})

    def get_kpis(self, *, from_: str | None = None, to: str | None = None) -> Answer:
        """``GET /v1/finance/kpis`` (getKpis)."""
        return self._json("GET", "/v1/finance/kpis", {"from": from_, "to": to})

    def get_kpis_csv(self, *, from_: str | None = None, to: str | None = None) -> CsvAnswer:
        """``GET /v1/finance/kpis`` (getKpis) as CSV."""
        return self._csv("/v1/finance/kpis", {"from": from_, "to": to})

    def get_audit_trail(self, *, after: int | None = None, limit: int | None = None) -> Answer:
        """``GET /v1/finance/audit`` (getAuditTrail) in chain order."""
        return self._json("GET", "/v1/finance/audit", {"after": after, "limit": limit})

    def get_audit_trail_csv(self, *, after: int | None = None, limit: int | None = None) -> CsvAnswer:
        """``GET /v1/finance/audit`` (getAuditTrail) as CSV."""
        return self._csv("/v1/finance/audit", {"after": after, "limit": limit})

    # ------------------------------------------------------------------ Reports

    def create_report(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/finance/reports`` (createReport): 202, a report job."""
        return self._json("POST", "/v1/finance/reports", body=body, key=self._key(idempotency_key))

    def list_reports(self, *, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/finance/reports`` (listReports), newest first."""
        return self._json("GET", "/v1/finance/reports", {"limit": limit, "cursor": cursor})

    def get_report(self, report_id: str) -> Answer:
        """``GET /v1/finance/reports/{report_id}`` (getReport): status, progress, once completed the result."""
        return self._json("GET", f"/v1/finance/reports/{_seg(report_id)}")

    # ------------------------------------------------------------------ Rewards

    def issue_reward(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/rewards`` (issueReward): 202, paid from the budget."""
        return self._json("POST", "/v1/rewards", body=body, key=self._key(idempotency_key))

    def get_reward(self, reward_id: str) -> Answer:
        """``GET /v1/rewards/{reward_id}`` (getReward)."""
        return self._json("GET", f"/v1/rewards/{_seg(reward_id)}")

    def reveal_reward_codes(self, reward_id: str) -> Answer:
        """``GET /v1/rewards/{reward_id}/codes`` (revealRewardCodes): the codes in clear (recorded)."""
        return self._json("GET", f"/v1/rewards/{_seg(reward_id)}/codes")

    # ------------------------------------------------------------------ Batches

    def submit_batch(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/batches`` (submitBatch): inline ``lines`` or an ``upload_id``; 202."""
        return self._json("POST", "/v1/batches", body=body, key=self._key(idempotency_key))

    def list_batches(self, *, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/batches`` (listBatches), newest first."""
        return self._json("GET", "/v1/batches", {"limit": limit, "cursor": cursor})

    def create_batch_upload(self, body: Body) -> Answer:
        """``POST /v1/batches/uploads`` (createBatchUpload): a pre-signed URL (see :meth:`upload_batch_file`)."""
        return self._json("POST", "/v1/batches/uploads", body=body, idempotent=True)

    def get_batch(self, batch_id: str) -> Answer:
        """``GET /v1/batches/{batch_id}`` (getBatch): status and line counts."""
        return self._json("GET", f"/v1/batches/{_seg(batch_id)}")

    def list_batch_lines(self, batch_id: str, *, limit: int | None = None, cursor: str | None = None,
                         status: str | None = None) -> Answer:
        """``GET /v1/batches/{batch_id}/lines`` (listBatchLines) in order."""
        return self._json("GET", f"/v1/batches/{_seg(batch_id)}/lines", {"limit": limit, "cursor": cursor,
                                                                          "status": status})

    def list_batch_lines_csv(self, batch_id: str, *, limit: int | None = None, cursor: str | None = None,
                             status: str | None = None) -> CsvAnswer:
        """``GET /v1/batches/{batch_id}/lines`` (listBatchLines) as CSV."""
        return self._csv(f"/v1/batches/{_seg(batch_id)}/lines", {"limit": limit, "cursor": cursor, "status": status})

    def retry_batch(self, batch_id: str) -> Answer:
        """``POST /v1/batches/{batch_id}/retry`` (retryBatch): a new run over the lines not issued; 202."""
        return self._json("POST", f"/v1/batches/{_seg(batch_id)}/retry")

    # ------------------------------------------------------------------ Webhooks and events

    def register_webhook(self, body: Body) -> Answer:
        """``POST /v1/webhooks`` (registerWebhook): 201 with the signing secret, shown once."""
        return self._json("POST", "/v1/webhooks", body=body)

    def list_webhooks(self) -> Answer:
        """``GET /v1/webhooks`` (listWebhooks) with their delivery health."""
        return self._json("GET", "/v1/webhooks")

    def get_webhook(self, endpoint_id: str) -> Answer:
        """``GET /v1/webhooks/{endpoint_id}`` (getWebhook)."""
        return self._json("GET", f"/v1/webhooks/{_seg(endpoint_id)}")

    def delete_webhook(self, endpoint_id: str) -> Answer:
        """``DELETE /v1/webhooks/{endpoint_id}`` (deleteWebhook): 204, an empty answer."""
        return self._json("DELETE", f"/v1/webhooks/{_seg(endpoint_id)}")

    def rotate_webhook_secret(self, endpoint_id: str, body: Body) -> Answer:
        """``POST /v1/webhooks/{endpoint_id}/rotate-secret`` (rotateWebhookSecret): the new secret."""
        return self._json("POST", f"/v1/webhooks/{_seg(endpoint_id)}/rotate-secret", body=body)

    def list_events(self, *, after: str | None = None, type: str | None = None,
                    limit: int | None = None) -> Answer:
        """``GET /v1/events`` (listEvents) in order; page with ``after=answer["next_after"]``."""
        return self._json("GET", "/v1/events", {"after": after, "type": type, "limit": limit})

    def get_event(self, event_id: str) -> Answer:
        """``GET /v1/events/{event_id}`` (getEvent)."""
        return self._json("GET", f"/v1/events/{_seg(event_id)}")

    def redeliver_event(self, event_id: str, body: Body) -> Answer:
        """``POST /v1/events/{event_id}/redeliver`` (redeliverEvent): 202."""
        return self._json("POST", f"/v1/events/{_seg(event_id)}/redeliver", body=body)

    # ------------------------------------------------------------------ Queue senders (admin)

    def list_queue_senders(self) -> Answer:
        """``GET /v1/queue-senders`` (listQueueSenders)."""
        return self._json("GET", "/v1/queue-senders")

    def get_queue_sender(self, principal_id: str) -> Answer:
        """``GET /v1/queue-senders/{principal_id}`` (getQueueSender)."""
        return self._json("GET", f"/v1/queue-senders/{_seg(principal_id)}")

    def put_queue_sender(self, principal_id: str, body: Body) -> Answer:
        """``PUT /v1/queue-senders/{principal_id}`` (putQueueSender): 201 new, 200 already registered here."""
        return self._json("PUT", f"/v1/queue-senders/{_seg(principal_id)}", body=body)

    def delete_queue_sender(self, principal_id: str) -> Answer:
        """``DELETE /v1/queue-senders/{principal_id}`` (deleteQueueSender): 204."""
        return self._json("DELETE", f"/v1/queue-senders/{_seg(principal_id)}")

    # ------------------------------------------------------------------ Program settings

    def get_program(self) -> Answer:
        """``GET /v1/program`` (getProgram): the settings; ``headers["ETag"]`` is their version for If-Match."""
        return self._json("GET", "/v1/program")

    def patch_program(self, body: Body, *, if_match: str | int | None = None) -> Answer:
        """``PATCH /v1/program`` (patchProgram), admin: a JSON merge patch of the settings, a new version. With
        ``if_match`` (a version, or the ETag of :meth:`get_program`) a stale change is refused (412)."""
        headers = {"Content-Type": "application/merge-patch+json"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
        response = self.request("PATCH", "/v1/program", body=_json_body(body), headers=headers)
        return Answer(response.body, response.status, response.headers)

    def list_program_versions(self, *, limit: int | None = None, cursor: str | None = None) -> Answer:
        """``GET /v1/program/versions`` (listProgramVersions), newest first."""
        return self._json("GET", "/v1/program/versions", {"limit": limit, "cursor": cursor})

    def get_program_version(self, version: int | str) -> Answer:
        """``GET /v1/program/versions/{version}`` (getProgramVersion)."""
        return self._json("GET", f"/v1/program/versions/{_seg(str(version))}")

    # ------------------------------------------------------------------ Rules

    def create_rule(self, body: Body, *, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/rules`` (createRule), admin: 201 with the rule (version 1, active); the same key and body
        answer it again (200)."""
        return self._json("POST", "/v1/rules", body=body, key=self._key(idempotency_key))

    def list_rules(self, *, status: str | None = None, trigger: str | None = None, limit: int | None = None,
                   cursor: str | None = None) -> Answer:
        """``GET /v1/rules`` (listRules): the rules as they stand, oldest first."""
        return self._json("GET", "/v1/rules", {"status": status, "trigger": trigger, "limit": limit,
                                               "cursor": cursor})

    def get_rule(self, rule_id: str) -> Answer:
        """``GET /v1/rules/{rule_id}`` (getRule): the rule with its versions; ``headers["ETag"]`` is its version."""
        return self._json("GET", f"/v1/rules/{_seg(rule_id)}")

    def _rule_write(self, method: str, rule_id: str, body: Body | None, if_match: str | int | None) -> Answer:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
        response = self.request(method, f"/v1/rules/{_seg(rule_id)}",
                                body=None if body is None else _json_body(body), headers=headers)
        return Answer(response.body, response.status, response.headers)

    def put_rule(self, rule_id: str, body: Body, *, if_match: str | int | None = None) -> Answer:
        """``PUT /v1/rules/{rule_id}`` (putRule), admin: the whole new definition, a new version (the same one
        writes nothing). With ``if_match`` (a version, or the ETag of :meth:`get_rule`) a stale one is a 412."""
        return self._rule_write("PUT", rule_id, body, if_match)

    def retire_rule(self, rule_id: str, *, if_match: str | int | None = None) -> Answer:
        """``DELETE /v1/rules/{rule_id}`` (retireRule), admin: the rule retired (kept); twice answers it again."""
        return self._rule_write("DELETE", rule_id, None, if_match)

    def get_rule_version(self, rule_id: str, version: int | str) -> Answer:
        """``GET /v1/rules/{rule_id}/versions/{version}`` (getRuleVersion): one version, whole."""
        return self._json("GET", f"/v1/rules/{_seg(rule_id)}/versions/{_seg(str(version))}")

    # ------------------------------------------------------------------ Segments

    def create_segment(self, body: Body) -> Answer:
        """``POST /v1/segments`` (createSegment), admin: 201 with the custom segment (version 1); the same id and
        definition again answer it (200), another definition under the id is a 409."""
        return self._json("POST", "/v1/segments", body=body)

    def list_segments(self) -> Answer:
        """``GET /v1/segments`` (listSegments), finance and admin: every segment with its member count and the
        members per tier, from the snapshot (``computed_at``)."""
        return self._json("GET", "/v1/segments")

    def get_segment(self, segment_id: str) -> Answer:
        """``GET /v1/segments/{segment_id}`` (getSegment): the custom segment with its versions (ETag: version)."""
        return self._json("GET", f"/v1/segments/{_seg(segment_id)}")

    def _segment_write(self, method: str, segment_id: str, body: Body | None, if_match: str | int | None) -> Answer:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
        response = self.request(method, f"/v1/segments/{_seg(segment_id)}",
                                body=None if body is None else _json_body(body), headers=headers)
        return Answer(response.body, response.status, response.headers)

    def put_segment(self, segment_id: str, body: Body, *, if_match: str | int | None = None) -> Answer:
        """``PUT /v1/segments/{segment_id}`` (putSegment), admin: a new version (the same definition writes
        nothing); with ``if_match`` a stale one is a 412."""
        return self._segment_write("PUT", segment_id, body, if_match)

    def retire_segment(self, segment_id: str, *, if_match: str | int | None = None) -> Answer:
        """``DELETE /v1/segments/{segment_id}`` (retireSegment), admin: retired, kept with its versions."""
        return self._segment_write("DELETE", segment_id, None, if_match)

    def get_segment_version(self, segment_id: str, version: int | str) -> Answer:
        """``GET /v1/segments/{segment_id}/versions/{version}`` (getSegmentVersion): one version, whole."""
        return self._json("GET", f"/v1/segments/{_seg(segment_id)}/versions/{_seg(str(version))}")

    def get_member_segments(self, member_id: str) -> Answer:
        """``GET /v1/members/{member_id}/segments`` (getMemberSegments): the member's segments with reasons."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/segments")

    def get_member_offers(self, member_id: str, *, limit: int | None = None) -> Answer:
        """``GET /v1/members/{member_id}/offers`` (getMemberOffers): the rules that fit the member and the catalog
        items they can afford or nearly afford, ranked."""
        return self._json("GET", f"/v1/members/{_seg(member_id)}/offers", {"limit": limit})

    # ------------------------------------------------------------------ Docs

    def get_open_api_document(self) -> Answer:
        """``GET /v1/openapi.json`` (getOpenApiDocument): the OpenAPI document (no key needed)."""
        return self._json("GET", "/v1/openapi.json")


def _seg(value: str) -> str:
    """A path parameter, escaped as one path segment."""
    return urllib.parse.quote(str(value), safe="")
