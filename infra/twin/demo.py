"""``make demo``: a scripted walk-through against the running twin (one is started when none runs).

Registers a webhook with a local receiver, sets three tiers, enrolls a member, accrues points by API and by
queue (and replays a purchase), adjusts, runs the programme (earning rules, a till's basket with a book, a
referral, a review, a member climbing to Gold, her segments and offers; its rules retired again), spends points
on a gift card, a voucher (redeemed at the till) and a donation, lets the simulated provider fail one order,
sends a brand's gift card and a batch of ``DEMO_BATCH`` (``--batch``, default 20) gift cards paid from the
budget, then shows what finance sees (budget, trial balance, today's reconciliation, the audit chain) and what
the webhook receiver got.

Every call is checked: an answer the walk does not expect ends it with one line (step, method, path,
status, problem type, title and detail) and exit status 1; every wait has a time limit. The webhook it
registered is removed (and checked gone) however the walk ends, and a twin the demo started is stopped.
Ctrl-C stops it the same way, with exit status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "functions"))

from treue.client import ApiError, ApiUnreachable, TreueClient  # noqa: E402

DEFAULT_BATCH = 20  # lines of the default walk's batch; DEMO_BATCH=1000 for the big one
MAX_BATCH = 10_000  # what one POST /v1/batches takes inline
CALL_SECONDS = 35  # API Gateway answers (or gives up) within 29 s
TWIN_START_SECONDS = 180
TWIN_STOP_SECONDS = 60  # then the twin's whole process group is killed
LINE_FUNDING = 600  # minor units funded per batch line: its 5.00 EUR face value and the fee
PROGRAM_CACHE_SECONDS = 60  # the functions read a program's settings at most once a minute (treue.runtime)
# the programme the demo runs: Ada's 178 points of the first step stay below Silver; Mary climbs within a run
TIERS: dict[str, Any] = {
    "metric": "points", "period": {"type": "rolling", "months": 12},
    "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
               {"id": "silver", "name": "Silver", "threshold": 300, "benefits": {"earn_multiplier_bps": 12_500}},
               {"id": "gold", "name": "Gold", "threshold": 1000, "benefits": {"earn_multiplier_bps": 15_000}}]}
# (label, rule): created by every run with its own Idempotency-Key and retired at the end of its programme part;
# none pays at enrollment or on a purchase without lines, so the other steps' figures hold
RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("books", {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
               "effect": {"multiplier_bps": 20_000}}),
    ("friends", {"name": "Friends", "trigger": "referral", "effect": {"referrer_points": 500, "referee_points": 250}}),
    ("review", {"name": "Review bonus", "trigger": "activity", "conditions": {"activity_type": "review"},
                "effect": {"points": 50}, "limits": {"per_member_per_day": 1}}),
    ("premium", {"name": "Premium coffee triple", "trigger": "purchase",
                 "conditions": {"category": "coffee", "segment": "premium"}, "effect": {"multiplier_bps": 30_000}}),
)


class DemoFailed(Exception):
    """The walk cannot go on: one line for the user, and exit status 1."""


def _one_line(text: Any, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure(step: str, method: str, path: str, status: int, body: Any) -> str:
    """``<step>: <METHOD> <path> answered <status> <problem type> (<title>): <detail>``."""
    where = f"{step}: {method} {path.split('?')[0] if len(path) > 120 else path} answered {status}"
    if isinstance(body, dict) and ("type" in body or "title" in body or "detail" in body):
        return _one_line(f"{where} {body.get('type', '')} ({body.get('title', '')}): {body.get('detail', '')}", 600)
    return _one_line(f"{where}: {body if body not in (None, '') else '(empty body)'}", 600)


class Api:
    """The twin's API (treue.client) with the state file's keys; every answer is checked against what the
    step expects."""

    def __init__(self, state: dict[str, Any], timeout: float = CALL_SECONDS) -> None:
        self.url = state["url"]
        self.keys = state["api_keys"]
        self.timeout = timeout
        self.step = "start"
        # a read answered 429 or 503 (rate limit, storage timeout: both retryable) is asked again twice,
        # after Retry-After (1 s when absent, at most 5 s); a write is not
        self.clients = {scope: TreueClient(self.url, key, timeout=timeout, retries=2, max_retry_wait=5,
                                           retry_writes=False) for scope, key in self.keys.items()}

    def call(self, method: str, path: str, body: Any = None, scope: str = "partner",
             headers: dict[str, str] | None = None, expect: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        """``(status, body)`` when the status is one of ``expect``, else :class:`DemoFailed`. A read
        answered 429 or 503 is asked again twice."""
        try:
            answer = self.clients[scope].request(method, path, body=body, headers=headers)
            status, payload = answer.status, answer.body
        except ApiError as err:
            status, payload = err.status, err.body
        except ApiUnreachable as err:  # refused, reset, timed out, cut short
            raise DemoFailed(_one_line(f"{self.step}: {err}")) from None
        if status in expect:
            return status, payload
        raise DemoFailed(failure(self.step, method, path, status, payload))

    def failed(self, method: str, path: str, status: int, body: Any) -> DemoFailed:
        return DemoFailed(failure(self.step, method, path, status, body))


def wait_for(api: Api, what: str, fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float,
             interval: float = 0.3, describe: Callable[[Any], str] = str) -> Any:
    """Poll ``fetch()`` until ``done(value)``; after ``seconds`` a :class:`DemoFailed` naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(_one_line(f"{api.step}: {what} did not happen within {seconds:.0f} s "
                                       f"(last seen: {describe(value)})"))
        time.sleep(interval)


def check(api: Api, ok: bool, message: str) -> None:
    if not ok:
        raise DemoFailed(_one_line(f"{api.step}: {message}"))


def _money(m: dict) -> str:
    return f"{m['value'] // 100:,}.{m['value'] % 100:02d} {m['currency']}"


def _now() -> str:
    """Now in UTC with milliseconds, as the API stamps it: a rule created before this call is in force at it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _times(bps: int) -> str:
    return f"{bps / 10_000:g}×"


def _rule_text(rule: dict[str, Any]) -> str:
    """``purchase: category=books → multiplier_bps=20000`` and the limits."""
    def pairs(part: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in part.items())
    text = f"{rule['trigger']}: {pairs(rule.get('conditions') or {}) or 'always'} → {pairs(rule['effect'])}"
    return text + (f" ({pairs(rule['limits'])})" if rule.get("limits") else "")


def _catalog_line(item: dict[str, Any]) -> str:
    what = "affordable" if item["affordable"] else f"nearly: {item['points_missing']:,} points missing"
    return f"{item['item_id']:<26} from {item['min_points']:>6,} points  {what}"


def _fits(catalog: list[dict[str, Any]], available: int) -> bool:
    """Every item offered is affordable exactly when its price is within ``available``, else names what is
    missing and is nearly affordable (at least 80 %); targeted items may cost more."""
    return all(i["affordable"] == (i["min_points"] <= available)
               and i["points_missing"] == max(0, i["min_points"] - available)
               and (i["affordable"] or i["targeted"] or available * 10 >= i["min_points"] * 8) for i in catalog)


def progress_bar(view: dict[str, Any], tiers: dict[str, Any], width: int = 20) -> str:
    """``[######--------------] 100/300 to Silver`` from GET /v1/members/{id}/tier; at the top level the value."""
    progress = view["progress"]["value"]
    if view["progress"]["next_tier"] is None:
        return f"[{'#' * width}] {progress:,} points, the top tier"
    goal = progress + view["progress"]["needed"]
    names = {level["id"]: level["name"] for level in tiers["levels"]}
    filled = min(width, progress * width // goal) if goal else width
    return (f"[{'#' * filled}{'-' * (width - filled)}] {progress:,}/{goal:,} to "
            f"{names.get(view['progress']['next_tier'], view['progress']['next_tier'])}")


class Demo:
    def __init__(self, api: Api, state: dict[str, Any], state_file: Path, batch: int, receiver) -> None:
        self.api = api
        self.state = state
        self.state_file = state_file
        self.batch = batch
        self.receiver = receiver
        self.run = uuid.uuid4().hex[:8]
        self.fresh_twin = False  # the demo started the twin: no purchase has read the program's settings yet
        self.tiers_ready = 0.0  # time.monotonic() from which every accrual function earns by the tiers set
        self.names: dict[str, str] = {}  # rule id → name, of the rules this run created

    def step(self, title: str) -> None:
        self.api.step = title
        print(f"\n== {title}", flush=True)

    def cli(self, *args: str, seconds: float = 120) -> subprocess.CompletedProcess:
        """``treue <args>`` on this twin's state file; a non-zero exit is a :class:`DemoFailed`."""
        env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), "TREUE_STATE": str(self.state_file)}
        command = f"treue {' '.join(args)}"
        try:
            done = subprocess.run([sys.executable, "-m", "treue.cli", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=seconds)
        except subprocess.TimeoutExpired:
            raise DemoFailed(f"{self.api.step}: `{command}` did not finish within {seconds:.0f} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()[-1]
            raise DemoFailed(_one_line(f"{self.api.step}: `{command}` exited {done.returncode}: {last}"))
        return done

    # ------------------------------------------------------------ the walk

    def walk(self) -> None:
        self.tiers()
        mid = self.accrue()
        self.programme(mid)
        self.points_over_time()
        self.redeem(mid)
        self.brand_reward()
        self.brand_batch()
        self.books()
        self.audit()
        self.deliveries()

    def accrue(self) -> str:
        api, run = self.api, self.run
        self.step("Enroll a member (POST /v1/members)")
        status, member = api.call("POST", "/v1/members", {"email": f"ada.{run}@example.com", "name": "Ada Lovelace",
                                                          "locale": "en-GB"}, expect=(201,))
        print(f"   {status}  id={member['id']}  card={member['card_number']}  qr={member['qr_token']}")
        mid = member["id"]

        self.step("Accrue by API: a 49.99 EUR purchase (POST /v1/members/{id}/purchases)")
        purchase = {"transaction_id": f"pos-{run}-1", "amount": {"value": 4999, "currency": "EUR"},
                    "occurred_at": "2026-11-20T10:00:00Z"}
        status, body = api.call("POST", f"/v1/members/{mid}/purchases", purchase)
        print(f"   {status}  points_earned={body['points_earned']}  available={body['balance']['available']}")
        status, body = api.call("POST", f"/v1/members/{mid}/purchases", purchase)
        print(f"   replay of the same transaction: {status}  replayed={body['replayed']}  "
              f"available={body['balance']['available']}")
        check(api, body["replayed"] and body["balance"]["available"] == 49, f"the replay credited again: {body}")

        self.step("Accrue by queue: a 129.00 EUR web-shop order via SQS")
        import boto3
        import botocore.exceptions

        sqs = boto3.client("sqs", endpoint_url=self.state["aws_endpoint"], region_name=self.state["region"],
                           aws_access_key_id="twin", aws_secret_access_key="twin")
        # no program_id: the program is the one the message's SenderId (moto's fixed sender) is registered to
        message = {"member": {"email": member["email"]},
                   "purchase": {"transaction_id": f"shop-{run}-1", "amount": {"value": 12900, "currency": "EUR"},
                                "occurred_at": "2026-11-21T18:30:00Z"}}
        try:
            sqs.send_message(QueueUrl=self.state["queues"]["accrual"], MessageBody=json.dumps(message))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            raise DemoFailed(_one_line(f"{api.step}: SQS SendMessage to the accrual queue failed: {err}")) from None
        balance = wait_for(api, "the queued purchase's 129 points", lambda: api.call(
            "GET", f"/v1/members/{mid}/balance")[1], lambda b: b["available"] >= 49 + 129, 60)
        check(api, balance["available"] == 178, f"expected 178 points available, the balance is {balance}")
        print(f"   balance: {balance}")

        self.step("Goodwill adjustment by an admin key (POST /v1/members/{id}/adjustments)")
        status, body = api.call("POST", f"/v1/members/{mid}/adjustments",
                                {"points": 22, "reason": "welcome bonus", "reference": f"bonus-{run}"},
                                scope="admin")
        print(f"   {status}  available={body['balance']['available']}")

        self.step("Statement, newest first (GET /v1/members/{id}/ledger)")
        _, statement = api.call("GET", f"/v1/members/{mid}/ledger", scope="finance")
        for e in statement["entries"]:
            print(f"   {e['created_at']}  {e['type']:<10} {e['points']:>+6}  {e['reference']:<22} {e['reason']}")
        points = [e["points"] for e in statement["entries"]]
        check(api, points == [22, 129, 49], f"expected the entries +22, +129, +49, the statement has {points}")
        return mid

    # ------------------------------------------------------------ the programme (tiers, rules, offers)

    def tiers(self) -> None:
        """The admin sets the demo's tiers first: the accrual functions read the settings at most once a minute
        (``PROGRAM_CACHE_SECONDS``), and on a twin the demo started no purchase has read them yet."""
        api = self.api
        self.step("The admin sets three tiers (GET /v1/program, then PATCH with If-Match)")
        _, before = api.call("GET", "/v1/program", scope="admin")
        _, after = api.call("PATCH", "/v1/program", {"tiers": TIERS}, scope="admin",
                            headers={"Content-Type": "application/merge-patch+json",
                                     "If-Match": f'"{before["version"]}"'})
        levels = (after.get("tiers") or {}).get("levels") or []
        got = [(lv["id"], lv["threshold"], lv["benefits"]["earn_multiplier_bps"]) for lv in levels]
        want = [(lv["id"], lv["threshold"], lv.get("benefits", {}).get("earn_multiplier_bps", 10_000))
                for lv in TIERS["levels"]]
        check(api, got == want and after["tiers"]["metric"] == "points"
              and after["tiers"]["period"] == TIERS["period"], f"the settings show the tiers {after.get('tiers')}")
        changed = after["version"] != before["version"]
        print(f"   version {before['version']} → {after['version']}" if changed
              else f"   version {after['version']}: already so, nothing written")
        print("   " + " · ".join(f"{lv['name']} from {lv['threshold']:,} "
                                  f"({_times(lv['benefits']['earn_multiplier_bps'])})" for lv in levels)
              + "; points earned by purchases, rolling 12 months")
        if self.fresh_twin:
            self.tiers_ready = time.monotonic()  # no accrual has read the program yet
        else:  # a warm accrual function may hold the settings from before this version for up to a minute
            age = max(0.0, time.time() - _epoch(after["updated_at"]))
            self.tiers_ready = time.monotonic() + max(0.0, PROGRAM_CACHE_SECONDS + 1 - age)

    def programme(self, mid: str) -> None:
        """Earning rules, a basket with books, a referral, a review, a member climbing to Gold and what the
        programme offers them. The rules it creates are retired at its end, however it ends (the tiers stay)."""
        created: dict[str, str] = {}  # label → rule id
        done = False
        try:
            self.rules(created)
            member = self.till(created["books"])
            friend = self.referral(member)
            self.review(member)
            self.climb(member, mid)
            self.offers(member, friend, created)
            done = True
        finally:
            try:
                self.retire(created)
            except (DemoFailed, KeyboardInterrupt) as err:
                if done:
                    raise
                print(f"   could not retire the demo's rules (they end within the hour): {err}", file=sys.stderr)

    def rules(self, created: dict[str, str]) -> None:
        api, run = self.api, self.run
        self.step("The admin adds earning rules (POST /v1/rules with an Idempotency-Key)")
        ends_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))  # in case a run is killed
        for label, rule in RULES:
            status, body = api.call("POST", "/v1/rules", {**rule, "ends_at": ends_at}, scope="admin",
                                    headers={"Idempotency-Key": f"demo-{label}-{run}"}, expect=(201,))
            created[label] = body["id"]
            self.names[body["id"]] = body["name"]
            print(f"   {status}  {body['id']}  v{body['version']}  {body['name']:<26} {_rule_text(rule)}")
        status, again = api.call("POST", "/v1/rules", {**RULES[0][1], "ends_at": ends_at}, scope="admin",
                                 headers={"Idempotency-Key": f"demo-{RULES[0][0]}-{run}"})
        check(api, again["id"] == created[RULES[0][0]], f"the retried creation made another rule: {again['id']}")
        print(f"   the same Idempotency-Key again: {status}, the same rule {again['id']}")

    def points_over_time(self) -> None:
        """A second program of its own (the demo program's settings stay as they are): 14 pending days and
        rolling 12-month expiry; purchases dated 20 days, 2 days and 400 days back; the expiry job; a return."""
        api = self.api
        self.step("Points over time: a shop with 14 pending days and 12-month expiry (treue program create)")
        created = json.loads(self.cli("program", "create", "--name", f"Zeitladen {self.run}", "--currency", "EUR",
                                      "--country", "DE").stdout)
        for scope, key in created["api_keys"].items():
            api.clients[f"zeit-{scope}"] = TreueClient(api.url, key, timeout=api.timeout, retries=2, max_retry_wait=5,
                                                       retry_writes=False)
        wait_for(api, "the gateway letting the new program's key in",
                 lambda: api.call("GET", "/v1/program", scope="zeit-partner", expect=(200, 403))[0],
                 lambda status: status == 200, 15)
        _, settings = api.call("PATCH", "/v1/program", {"pending_days": 14, "expiry": {"policy": "rolling",
                                                                                       "months": 12}},
                               scope="zeit-admin", headers={"Content-Type": "application/merge-patch+json"})
        print(f"   {created['program_id']}: pending_days={settings['pending_days']}  expiry={settings['expiry']}")
        _, greta = api.call("POST", "/v1/members", {"email": f"greta.{self.run}@example.com", "name": "Greta"},
                            scope="zeit-partner", expect=(201,))
        now = datetime.now(UTC)
        for days, value, lines in ((20, 5000, None), (2, 8000, [{"sku": "MUG", "quantity": 2, "amount": {
                "value": 3000, "currency": "EUR"}}, {"sku": "TEAPOT", "quantity": 1, "amount": {
                "value": 5000, "currency": "EUR"}}]), (400, 3000, None)):
            body: dict[str, Any] = {"transaction_id": f"zeit-{days}d-{self.run}",
                                    "amount": {"value": value, "currency": "EUR"},
                                    "occurred_at": (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            if lines:
                body["lines"] = lines
            _, paid = api.call("POST", f"/v1/members/{greta['id']}/purchases", body, scope="zeit-partner")
            when = f"available from {paid['available_at'][:10]}" if paid.get("available_at") else "available"
            print(f"   a {_money(body['amount'])} purchase of {days} days ago: {paid['points_earned']} points, {when}")
        ran = json.loads(self.cli("jobs", "run", "expire-points", "--program", created["program_id"]).stdout)
        print(f"   treue jobs run expire-points: {ran['expired_points']} points expired now "
              "(the twin's own daily schedule runs every few seconds and may have been first)")
        balance = wait_for(api, "the 400-day-old purchase's points expiring",
                           lambda: api.call("GET", f"/v1/members/{greta['id']}/balance", scope="zeit-partner")[1],
                           lambda b: b["available"] == 50, 30, describe=lambda b: f"available {b['available']}")
        print(f"   balance: available {balance['available']}, pending {balance['pending']}; expiring "
              + ", ".join(f"{e['points']} on {e['on']}" for e in balance["expiring"]))
        self.step("A return inside the pending days: one mug back (POST /v1/members/{id}/returns)")
        _, back = api.call("POST", f"/v1/members/{greta['id']}/returns", {
            "return_id": f"zeit-ret-{self.run}", "transaction_id": f"zeit-2d-{self.run}",
            "lines": [{"sku": "MUG", "quantity": 1, "amount": {"value": 1500, "currency": "EUR"}}],
            "occurred_at": _now()}, scope="zeit-partner")
        check(api, back["points_reversed"] == 15 and back["balance"]["available"] == 50,
              f"the return reversed {back['points_reversed']} points, available {back['balance']['available']}")
        taken = ", ".join(f"{where} {n}" for where, n in (back.get("taken_from") or {}).items() if n)
        print(f"   {back['points_reversed']} points reversed from {taken}: pending "
              f"{back['balance']['pending']}, available still {back['balance']['available']}")
        _, ledger = api.call("GET", f"/v1/members/{greta['id']}/ledger", scope="zeit-partner")
        for e in reversed(ledger["entries"]):
            print(f"   {e['type']:<10} {e['points']:>+5} available {e.get('pending', 0):>+5} pending  "
                  f"{e['reference'][:24]:<24} expires {e.get('expires_on') or '-'}")

    def enroll(self, who: str, name: str, **more: Any) -> dict[str, Any]:
        _, member = self.api.call("POST", "/v1/members", {"email": f"{who}.{self.run}@example.com", "name": name,
                                                          **more}, expect=(201,))
        return member

    def buy(self, member: dict[str, Any], label: str, value: int, lines: list[dict] | None = None,
            simulate: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"transaction_id": f"{label}-{self.run}", "amount": {"value": value, "currency": "EUR"},
                                "occurred_at": _now()}
        if lines:
            body["lines"] = lines
        if simulate:
            return self.api.call("POST", "/v1/rules/simulate", {"member_id": member["id"], **body})[1]
        return self.api.call("POST", f"/v1/members/{member['id']}/purchases", body)[1]

    def explain(self, line: dict[str, Any], basket: list[dict[str, Any]]) -> str:
        """One breakdown line: what paid it (the base rate, a tier, a rule by name), on which purchase line."""
        what = "base rate" if line["rule_id"] == "base" else self.names.get(line["rule_id"], line["rule_id"])
        at = line.get("line_index")
        where = (f"line {at} ({basket[at]['category']})" if isinstance(at, int) and 0 <= at < len(basket)
                 else "the purchase")
        return (f"{what:<22} v{line['version']:<3} {where:<20} +{line['points']}"
                + (f"  ({line['reason']})" if line.get("reason") else ""))

    def till(self, books: str) -> dict[str, Any]:
        api = self.api
        self.step("A till: what a basket with a book will earn, then the purchase (POST /v1/rules/simulate)")
        member = self.enroll("mary", "Mary Somerville")
        print(f"   Mary enrolls: {member['id']}  referral code {member['referral_code']}")
        basket = [{"sku": "BOOK-ORBITS", "category": "books", "quantity": 1,
                   "amount": {"value": 4000, "currency": "EUR"}},
                  {"sku": "PEN-INK", "category": "stationery", "quantity": 2,
                   "amount": {"value": 2000, "currency": "EUR"}}]
        said = self.buy(member, "till", 6000, basket, simulate=True)
        print(f"   simulate: {said['points_earned']} points, nothing posted")
        for line in said["breakdown"]:
            print(f"     {self.explain(line, basket)}")
        paid = self.buy(member, "till", 6000, basket)
        print(f"   POST /v1/members/{{id}}/purchases: {paid['points_earned']} points  "
              f"available={paid['balance']['available']}")
        bonus = sum(line["points"] for line in paid["breakdown"] if line["rule_id"] == books)
        check(api, paid["breakdown"] == said["breakdown"] and paid["points_earned"] == said["points_earned"],
              f"the purchase earned {paid['breakdown']}, the till was told {said['breakdown']}")
        check(api, (paid["points_earned"], bonus) == (100, 40),
              f"expected 100 points (60 base, 40 for the books line), the breakdown is {paid['breakdown']}")
        return member

    def referral(self, member: dict[str, Any]) -> dict[str, Any]:
        api = self.api
        self.step("A referral: a friend enrolls with Mary's code and buys (GET /v1/members/{id}/referrals)")
        friend = self.enroll("emmy", "Emmy Noether", referred_by=member["referral_code"])
        check(api, friend.get("referred_by") == member["id"], f"the friend was not linked to Mary: {friend}")
        print(f"   Emmy enrolls with referred_by={member['referral_code']}: {friend['id']}")
        bought = self.buy(friend, "friend", 15_000)
        print(f"   Emmy buys for 150.00 EUR: {bought['points_earned']} points; the Progress function pays the "
              "referral from the table's stream …")
        path = f"/v1/members/{member['id']}/referrals"
        # completed at the first payment (Emmy's); Mary's is the next transaction
        listed = wait_for(api, "the referral's payment to both", lambda: api.call("GET", path)[1],
                          lambda r: len(r["items"]) == 1 and r["items"][0]["status"] == "completed"
                          and r["items"][0]["referrer_points"] is not None, 30,
                          describe=lambda r: r["items"])
        done = listed["items"][0]
        print(f"   {done['member_id']}  {done['status']}  referrer +{done['referrer_points']}  "
              f"referee +{done['referee_points']}")
        mary = api.call("GET", f"/v1/members/{member['id']}/balance")[1]["available"]
        emmy = api.call("GET", f"/v1/members/{friend['id']}/balance")[1]["available"]
        print(f"   available: Mary {mary} (100 + 500), Emmy {emmy} (150 + 250)")
        check(api, (done["member_id"], done["referrer_points"], done["referee_points"], mary, emmy)
              == (friend["id"], 500, 250, 600, 400), f"expected the referral to pay 500 and 250 once: {listed}, "
              f"Mary has {mary}, Emmy {emmy}")
        return friend

    def review(self, member: dict[str, Any]) -> None:
        api, run = self.api, self.run
        self.step("An activity: Mary reviews a book (POST /v1/members/{id}/activities)")
        path = f"/v1/members/{member['id']}/activities"
        first = {"type": "review", "reference": f"review-1-{run}", "occurred_at": _now()}
        _, paid = api.call("POST", path, first)
        print(f"   review 1: {paid['points_earned']} points  available={paid['balance']['available']}")
        _, replay = api.call("POST", path, first)
        print(f"   review 1 again: replayed={replay['replayed']}  {replay['points_earned']} points  "
              f"available={replay['balance']['available']}")
        _, second = api.call("POST", path, {"type": "review", "reference": f"review-2-{run}", "occurred_at": _now()})
        print(f"   review 2 the same day: {second['points_earned']} points: {second['reason']}")
        check(api, (paid["points_earned"], paid["balance"]["available"]) == (50, 650)
              and replay["replayed"] and replay["balance"]["available"] == 650
              and second["points_earned"] == 0 and "per_member_per_day" in (second.get("reason") or ""),
              f"expected 50 points once and a second review of the day to earn 0: {paid}, {replay}, {second}")

    def tier(self, member_id: str, who: str) -> dict[str, Any]:
        _, view = self.api.call("GET", f"/v1/members/{member_id}/tier")
        print(f"   {who + ':':<5} {view['name']:<6} {progress_bar(view, TIERS)}")
        return view

    def climb(self, member: dict[str, Any], first_member: str) -> None:
        api = self.api
        self.step("Mary climbs the tiers: purchases and GET /v1/members/{id}/tier")
        wait = self.tiers_ready - time.monotonic()
        if wait > 0:
            print(f"   (the accrual functions read the settings at most once a minute: {wait:.0f} s until the new "
                  "tiers apply to purchases)", flush=True)
            time.sleep(wait)
        ada = self.tier(first_member, "Ada")
        today = datetime.now(UTC)  # her purchases occurred in November 2026: in the window for 12 months
        qualifying = 49 + 129 if today.year * 12 + today.month - (2026 * 12 + 11) < 12 else 0
        check(api, (ada["tier"], ada["progress"]["value"]) == ("bronze", qualifying),
              f"the first member should be Bronze with {qualifying} qualifying points: {ada}")
        expected = [(None, 0, "bronze", 100), (25_000, 250, "silver", 350), (70_000, 875, "gold", 1225),
                    (10_000, 150, "gold", 1375)]
        for n, (value, points, tier, qualifying) in enumerate(expected):
            if value is not None:
                bought = self.buy(member, f"climb-{n}", value)
                lines = "  ".join(f"{line['rule_id']} +{line['points']}" for line in bought["breakdown"])
                print(f"   buys for {_money({'value': value, 'currency': 'EUR'})}: {bought['points_earned']} points "
                      f"({lines})")
                check(api, bought["points_earned"] == points, f"expected {points} points: {bought}")
            view = self.tier(member["id"], "Mary")
            check(api, (view["tier"], view["progress"]["value"]) == (tier, qualifying),
                  f"expected Mary {tier} with {qualifying} qualifying points: {view}")
        multiplier = [line for line in bought["breakdown"] if line["rule_id"].startswith("tier:")]
        check(api, [(m["rule_id"], m["points"]) for m in multiplier] == [("tier:gold", 50)],
              f"Gold's purchase of 100.00 EUR should earn 50 more points (tier:gold): {bought['breakdown']}")
        retain = view["retain"]
        print(f"   {view['name']} since {view['since']}, reviewed {view['until']}: "
              + (f"{retain['needed']:,} more points by then keep it" if retain["needed"] else "already kept")
              + f"; projected at the current pace: {view['projected_tier']}")

    def offers(self, member: dict[str, Any], friend: dict[str, Any], created: dict[str, str]) -> None:
        api = self.api
        books, friends, premium = created["books"], created["friends"], created["premium"]
        self.step("Personalised: Mary's segments and offers (GET /v1/members/{id}/segments, /offers)")
        _, segments = api.call("GET", f"/v1/members/{member['id']}/segments")
        for s in segments["segments"]:
            print(f"   {s['id']:<9} {s['reason']}")
        ids = {s["id"] for s in segments["segments"]}
        check(api, {"new", "active", "premium"} <= ids, f"expected Mary new, active and premium: {sorted(ids)}")
        _, offers = api.call("GET", f"/v1/members/{member['id']}/offers")
        print(f"   rules for Mary ({offers['tier']}, {offers['available_points']:,} points available):")
        for r in offers["rules"]:
            print(f"     {'targeted ' if r['targeted'] else '         '}{r['name']:<26} +{r['potential_points']:<4} "
                  f"{r['description']}")
        shown = {r["rule_id"]: r for r in offers["rules"]}
        check(api, offers["available_points"] == 1925 and shown.get(premium, {}).get("targeted") is True
              and offers["rules"][0]["targeted"]
              and (shown[premium]["potential_points"], shown.get(books, {}).get("potential_points"),
                   shown.get(friends, {}).get("potential_points")) == (200, 100, 500),
              f"expected the premium rule targeted first (+200), books +100, friends +500: {offers['rules']}")
        available = offers["available_points"]
        print(f"   catalog for Mary: {sum(i['affordable'] for i in offers['catalog'])} items she can afford, the most "
              "valuable first:")
        for item in offers["catalog"][:3]:
            print(f"     {_catalog_line(item)}")
        check(api, any(i["affordable"] for i in offers["catalog"]) and _fits(offers["catalog"], available),
              f"the catalog offers do not fit {available:,} points: {offers['catalog'][:6]}")
        _, theirs = api.call("GET", f"/v1/members/{friend['id']}/offers")
        print(f"   Emmy ({theirs['tier']}, {theirs['available_points']} points available): {len(theirs['rules'])} "
              "rules, not the premium one; catalog:")
        for item in theirs["catalog"][:6]:
            print(f"     {_catalog_line(item)}")
        check(api, premium not in {r["rule_id"] for r in theirs["rules"]}, "Emmy is offered the premium rule")
        check(api, any(not i["affordable"] and i["points_missing"] == 100 for i in theirs["catalog"])
              and _fits(theirs["catalog"], 400),
              f"expected Emmy's 400 points to nearly afford a 500-point item: {theirs['catalog'][:6]}")

    def retire(self, created: dict[str, str]) -> None:
        """Retire the rules this run created (DELETE /v1/rules/{id}); the next run creates its own."""
        if not created:
            return
        self.step("The admin retires the demo's rules (DELETE /v1/rules/{id}); the tiers stay")
        for rule_id in created.values():
            _, body = self.api.call("DELETE", f"/v1/rules/{rule_id}", scope="admin")
            check(self.api, body["status"] == "retired", f"rule {rule_id} is {body['status']}")
        print(f"   {len(created)} rules retired, kept with their versions")

    def order(self, label: str, body: dict[str, Any]) -> dict[str, Any]:
        api = self.api
        _, accepted = api.call("POST", "/v1/orders", body, headers={"Idempotency-Key": f"{label}-{self.run}"},
                               expect=(202,))
        order = wait_for(api, f"order {accepted['order_id']} completing or failing",
                         lambda: api.call("GET", f"/v1/orders/{accepted['order_id']}")[1],
                         lambda o: o["status"] in ("COMPLETED", "FAILED"), 90, 0.3, lambda o: o["status"])
        print(f"   order {order['order_id']}  {order['item']['name']}  {order['points']} points")
        for h in order["history"]:
            print(f"     {h['at']}  {h['status']:<10} {h.get('reason', '')}")
        return order

    def redeem(self, mid: str) -> None:
        api, run = self.api, self.run
        self.step("Top up 6,000 bonus points to spend (admin adjustment)")
        _, body = api.call("POST", f"/v1/members/{mid}/adjustments",
                           {"points": 6000, "reason": "demo: points to spend", "reference": f"spend-{run}"},
                           scope="admin")
        print(f"   available={body['balance']['available']}")

        self.step("Catalog priced in this program's points (GET /v1/catalog?country=DE&max_points=1000)")
        _, page = api.call("GET", "/v1/catalog?country=DE&max_points=1000&limit=5")
        for item in page["items"]:
            print(f"   {item['type']:<9} {item['id']:<26} from {item['min_points']} points")

        self.step("A 25 EUR gift card (POST /v1/orders, then GET /v1/orders/{id}/codes)")
        gift = self.order("gift", {"member_id": mid, "item_id": "nordlicht-books-eur", "denomination": 2500,
                                   "delivery": {"method": "email"}})
        check(api, gift["status"] == "COMPLETED", f"the gift card order {gift['order_id']} ended {gift['status']}")
        _, codes = api.call("GET", f"/v1/orders/{gift['order_id']}/codes")
        print(f"   revealed (and recorded): {codes['codes'][0]['code']}")

        self.step("A 10 EUR voucher, redeemed at the till (POST /v1/vouchers/validate, /redeem)")
        voucher = self.order("voucher", {"member_id": mid, "item_id": "voucher-10-off", "delivery": {"method": "api"}})
        check(api, voucher["status"] == "COMPLETED",
              f"the voucher order {voucher['order_id']} ended {voucher['status']}")
        code = api.call("GET", f"/v1/orders/{voucher['order_id']}/codes")[1]["codes"][0]["code"]
        _, v = api.call("POST", "/v1/vouchers/validate", {"code": code})
        print(f"   validate {v['code']}: {v['status']}, {_money(v['value'])} off from {_money(v['minimum_spend'])}")
        status, v = api.call("POST", "/v1/vouchers/redeem", {"code": code, "reference": f"till-{run}",
                                                             "purchase_amount": {"value": 6400, "currency": "EUR"}})
        print(f"   redeem: {status} {v['status']}")
        status, again = api.call("POST", "/v1/vouchers/redeem", {"code": code, "reference": f"till-{run}-other"},
                                 expect=(409,))
        print(f"   a second redemption: {status} {again['detail']}")

        self.step("A 15 EUR donation (an order on a charity)")
        donation = self.order("donation", {"member_id": mid, "item_id": "kuestenwald", "face_value": 1500,
                                           "delivery": {"method": "link"}})
        check(api, donation["status"] == "COMPLETED",
              f"the donation order {donation['order_id']} ended {donation['status']}")
        _, receipt = api.call("GET", f"/v1/donations/{donation['donation_id']}")
        print(f"   receipt {receipt['receipt_number']} for {receipt['charity_name']} ({receipt['registration_id']})")

        self.step("The provider runs out of stock for one order: the order fails and its points come back")
        self.cli("simulate", "fault", "--program", self.state["program_id"], "--order-key", f"stock-{run}",
                 "--mode", "out_of_stock")
        failed = self.order("stock", {"member_id": mid, "item_id": "stadtkino-eur", "denomination": 1000,
                                      "delivery": {"method": "email"}})
        check(api, failed["status"] == "FAILED", f"order {failed['order_id']} ended {failed['status']}, not FAILED")
        _, balance = api.call("GET", f"/v1/members/{mid}/balance")
        print(f"\n   balance: {balance}")
        expected = 200 + 6000 - 2500 - 1000 - 1500
        check(api, balance["held"] == 0 and balance["available"] == expected,
              f"expected {expected} points available and none held, the balance is {balance}")

    def brand_reward(self) -> None:
        api, run = self.api, self.run
        self.step("A brand sends a gift card from its CRM, paid from the budget (POST /v1/rewards)")
        body = {"recipient": {"email": f"new.hire.{run}@example.com", "name": "Grace"},
                "item_id": "kaffeekranz-eur", "face_value": 2000, "message": "Welcome aboard",
                "reference": f"crm-{run}"}
        status, accepted = api.call("POST", "/v1/rewards", body, headers={"Idempotency-Key": f"crm-{run}"},
                                    expect=(202,))
        reward = wait_for(api, f"reward {accepted['reward_id']} completing or failing",
                          lambda: api.call("GET", f"/v1/rewards/{accepted['reward_id']}")[1],
                          lambda r: r["status"] in ("COMPLETED", "FAILED"), 90, 0.3, lambda r: r["status"])
        check(api, reward["status"] == "COMPLETED", f"reward {accepted['reward_id']} ended {reward['status']}")
        funds = reward["funds"]
        print(f"   {status}  {accepted['reward_id']}  → {reward['status']}  paid "
              f"{_money({'value': funds['face'], 'currency': funds['currency']})} + fee "
              f"{_money({'value': funds['fee'], 'currency': funds['currency']})}  code {reward['codes'][0]['masked']}")

    def brand_batch(self) -> None:
        api, run, size = self.api, self.run, self.batch
        self.step(f"A brand thanks {size:,} people at once: one batch, paid from the budget (POST /v1/batches)")
        funding = {"value": size * LINE_FUNDING, "currency": "EUR"}
        status, funded = api.call("POST", "/v1/finance/fundings", {"amount": funding, "reference": f"q4-{run}"},
                                  scope="admin", headers={"Idempotency-Key": f"q4-funding-{run}"}, expect=(200, 201))
        print(f"   {status}  budget topped up by {_money(funded['amount'])}")
        lines = [{"reference": f"q4-{run}-{n:05d}", "recipient": {"email": f"staff{n}.{run}@example.com"},
                  "item_id": "kaffeekranz-eur", "face_value": 500, "message": "Thank you!"} for n in range(1, size + 1)]
        started = time.monotonic()
        status, batch = api.call("POST", "/v1/batches", {"name": f"Q4 thank-you {run}", "lines": lines},
                                 headers={"Idempotency-Key": f"q4-batch-{run}"}, expect=(202,))
        batch_id = batch["batch_id"]
        print(f"   {status}  {batch_id}  {batch['lines']:,} lines validated, "
              f"costing {_money(batch['cost'][0])}, held from the budget; issuing 20 at a time:")
        tty = sys.stdout.isatty()
        stall_seconds = 180  # no line issued or failed for this long: the batch is stuck
        last_done, last_progress, last_line = -1, time.monotonic(), 0.0
        while True:
            _, view = api.call("GET", f"/v1/batches/{batch_id}")
            done = view["counts"]["issued"] + view["counts"]["failed"]
            finished = view["status"] in ("completed", "completed_with_failures", "halted")
            if done != last_done:
                last_done, last_progress = done, time.monotonic()
            if tty or finished or time.monotonic() - last_line >= 10:  # a log gets a line every 10 s
                filled = done * 30 // size
                print(f"{chr(13) if tty else ''}   [{'#' * filled}{'.' * (30 - filled)}] {done:>6,} / {size:,}  "
                      f"{view['status']:<24}", end="" if tty else "\n", flush=True)
                last_line = time.monotonic()
            if finished:
                break
            if time.monotonic() - last_progress > stall_seconds:
                raise DemoFailed(f"{api.step}: batch {batch_id} made no progress for {stall_seconds} s "
                                 f"({done:,} of {size:,} lines done, status {view['status']})")
            time.sleep(0.5)
        if tty:
            print()
        print(f"   {view['counts']['issued']:,} issued, {view['counts']['failed']} failed in "
              f"{time.monotonic() - started:.0f} s; every line: GET /v1/batches/{batch_id}/lines")
        check(api, view["status"] == "completed", f"batch {batch_id} ended {view['status']}"
              + (f": {view['halted_reason']}" if view.get("halted_reason") else ""))

    def books(self) -> None:
        """What finance sees after the walk: the budget that paid, the books, today's reconciliation."""
        api = self.api
        self.step("Finance: the EUR budget paid the gift cards, the donation and the batch (GET /v1/finance/budget)")
        _, budget = api.call("GET", "/v1/finance/budget?currency=EUR&limit=4", scope="finance")
        eur = budget["budgets"][0]
        print(f"   available {_money({'value': eur['available'], 'currency': 'EUR'})}, paid "
              f"{_money({'value': eur['paid_face_value'], 'currency': 'EUR'})} face value + "
              f"{_money({'value': eur['paid_fees'], 'currency': 'EUR'})} fees")
        for m in budget["movements"]:
            print(f"     {m['created_at']}  {m['type']:<7} {m['credit']:<17} {m['amount']:>8}  {m['reference']}")
        self.step("Finance: trial balance and today's reconciliation")
        _, trial = api.call("GET", "/v1/finance/trial-balance", scope="finance")
        for unit in trial["units"]:
            print(f"   {unit['unit']:<6} total {unit['total']}  "
                  + "  ".join(f"{a['account']}={a['balance']}" for a in unit["accounts"] if a["balance"]))
        check(api, trial["balanced"], "the trial balance does not balance")
        day = time.strftime("%Y-%m-%d", time.gmtime())
        orders, differences, how = reconcile(api, day, self.run, report_seconds=max(300, self.batch * 0.6))
        print(f"   reconciliation {day}{how}: {orders:,} orders, {differences} differences")
        check(api, differences == 0, f"the reconciliation of {day} lists {differences} differences")

    def audit(self) -> None:
        self.step("Audit trail: chained by the sealer schedule (treue audit verify)")
        verify = self.cli("audit", "verify", "--program", self.state["program_id"])
        try:
            result = json.loads(verify.stdout)
            print(f"   intact={result['intact']}  records={result['records_checked']}  "
                  f"head={result['head']['hash'][:16]}…")
        except (ValueError, KeyError, TypeError):
            raise DemoFailed(_one_line(f"{self.api.step}: `treue audit verify` printed {verify.stdout!r}")) from None
        check(self.api, result["intact"], "the audit chain is not intact")

    def deliveries(self) -> None:
        self.step("What the webhook receiver got (every delivery signature-checked)")
        wait_for(self.api, "the batch.completed webhook delivery", lambda: self.receiver.events("batch.completed"),
                 bool, 60 + self.batch * 0.2, describe=lambda _: f"{len(self.receiver.events())} deliveries")
        counts: dict[str, int] = {}
        for event in self.receiver.events():
            counts[event["type"]] = counts.get(event["type"], 0) + 1
        print("   " + ", ".join(f"{n} × {t}" for t, n in sorted(counts.items()))
              + f";  rejected: {self.receiver.rejected}")
        check(self.api, self.receiver.rejected == 0,
              f"{self.receiver.rejected} deliveries failed the signature check")


def reconcile(api: Api, day: str, run: str, report_seconds: float = 300) -> tuple[int, int, str]:
    """Today's reconciliation: (orders checked, differences, how it was answered). A day too large for
    one request (422 report-too-large) is computed by the report job the problem names."""
    path = f"/v1/finance/reconciliation?date={day}"
    status, body = api.call("GET", path, scope="finance", expect=(200, 422))
    if status == 200:
        return body["checked"]["orders"], len(body["differences"]), ""
    request = body.get("report_request") if isinstance(body, dict) else None
    if not str(body.get("type", "") if isinstance(body, dict) else "").endswith("/report-too-large") or not request:
        raise api.failed("GET", path, status, body)
    print(f"   422 report-too-large: {_one_line(body.get('detail', ''), 160)}\n"
          f"   → as a report job: {request['method']} {request['href']} {json.dumps(request['body'])}", flush=True)
    _, job = api.call(request["method"], request["href"], request["body"], scope="finance",
                      headers={"Idempotency-Key": f"demo-recon-{day}-{run}"}, expect=(202,))
    report_path = f"/v1/finance/reports/{job['report_id']}"
    report = wait_for(api, f"report job {job['report_id']} completing", lambda: api.call(
        "GET", report_path, scope="finance")[1], lambda r: r["status"] in ("completed", "failed"),
        report_seconds, 1.0, lambda r: f"{r['status']}, {r['progress']['items']:,} items read")
    if report["status"] == "failed":
        raise DemoFailed(_one_line(f"{api.step}: report job {job['report_id']} failed: {report['failure_reason']}"))
    return report["summary"]["orders"], report["summary"]["differences"], f" (report job {job['report_id']})"


def remove_webhook(api: Api, endpoint_id: str) -> None:
    """Delete the demo's endpoint and check that GET /v1/webhooks no longer lists it."""
    api.step = "Remove the demo's webhook endpoint"
    api.call("DELETE", f"/v1/webhooks/{endpoint_id}", expect=(200, 204, 404))
    _, listed = api.call("GET", "/v1/webhooks")
    left = [w["id"] for w in listed["items"] if w["id"] == endpoint_id]
    check(api, not left, f"webhook {endpoint_id} is still registered after DELETE")


def walk(api: Api, state: dict[str, Any], state_file: Path, batch: int, fresh_twin: bool = False) -> None:
    """The whole walk, with the webhook receiver; its endpoint is removed however the walk ends. ``fresh_twin``:
    the demo started the twin, so no function has read the program's settings before the walk changes them."""
    from infra.twin.receiver import Receiver

    receiver = Receiver(echo=True).start()
    endpoint_id, walked = None, False
    try:
        demo = Demo(api, state, state_file, batch, receiver)
        demo.fresh_twin = fresh_twin
        demo.step(f"Register a webhook endpoint: a local receiver that verifies signatures ({receiver.url})")
        status, endpoint = api.call("POST", "/v1/webhooks", {"url": receiver.url, "event_types": ["*"],
                                                             "description": f"make demo {demo.run}"}, expect=(201,))
        endpoint_id = endpoint["id"]
        receiver.secrets.append(endpoint["secret"])
        print(f"   {status}  id={endpoint_id}  secret={endpoint['secret'][:12]}… (shown once)")
        demo.walk()
        walked = True
    finally:
        if not walked:
            _ignore_interrupts()  # a second Ctrl-C does not leave the webhook behind (each call has a timeout)
        try:
            if endpoint_id:
                remove_webhook(api, endpoint_id)
                print(f"\nWebhook endpoint {endpoint_id} removed.", flush=True)
        except DemoFailed as err:
            if walked:  # the walk succeeded: a webhook left behind is a failure
                raise
            print(f"\nCould not remove webhook endpoint {endpoint_id}: {err}", file=sys.stderr, flush=True)
        finally:
            receiver.stop()


# ------------------------------------------------------------ the twin

def _read_state(state_file: Path) -> dict[str, Any]:
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}


def _alive(state: dict) -> bool:
    try:
        return TreueClient(state["url"], None, timeout=2).send("GET", "/v1/openapi.json").status == 200
    except (ApiUnreachable, KeyError):
        return False


def start_twin(port: int, state_dir: Path, template: str, log: Path) -> subprocess.Popen:
    """Start ``python -m infra.twin`` in its own session (Ctrl-C reaches only the demo, which stops it
    after removing its webhook), its output in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.twin", "--port", str(port), "--state-dir", str(state_dir),
             "--template", template], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)


def wait_for_twin(proc: subprocess.Popen, state_file: Path, stale: str | None, log: Path,
                  seconds: float = TWIN_START_SECONDS) -> dict[str, Any]:
    """The state of the twin ``proc`` once it answers (its state file no longer the ``stale`` one's)."""
    deadline = time.monotonic() + seconds
    while True:
        state = _read_state(state_file)
        if state.get("started_at") and state["started_at"] != stale and _alive(state):
            return state
        if proc.poll() is not None or time.monotonic() > deadline:
            reason = (f"exited with status {proc.returncode}" if proc.poll() is not None
                      else f"did not answer within {seconds:.0f} s")
            tail = log.read_text(errors="replace").strip().splitlines()[-15:] if log.exists() else []
            raise DemoFailed(f"the twin {reason}; the end of {log}:\n" + "\n".join(f"   {line}" for line in tail))
        time.sleep(0.3)


def stop_twin(proc: subprocess.Popen, seconds: float = TWIN_STOP_SECONDS) -> str:
    """Stop a twin this demo started: SIGTERM, up to ``seconds`` for it to stop its workers and moto,
    then SIGKILL to its whole process group. Never raises: cleanup does not turn success into failure."""
    if proc.poll() is not None:
        return f"had exited ({proc.returncode})"
    started = time.monotonic()
    try:
        proc.terminate()
        proc.wait(seconds)
        return f"stopped in {time.monotonic() - started:.1f} s"
    except subprocess.TimeoutExpired:
        pass
    except OSError:
        return "could not be signalled"
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the twin and its function workers
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        return f"did not stop (pid {proc.pid})"
    return f"killed after {seconds:.0f} s"


# ------------------------------------------------------------ main

def _batch_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of lines") from None
    if not 1 <= size <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{size} lines: between 1 and {MAX_BATCH:,}")
    return size


def _ignore_interrupts() -> None:
    """Cleanup runs to its end: a further Ctrl-C is ignored (every step of it has a time limit)."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.twin.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000, help="port of the twin to start when none runs")
    parser.add_argument("--state-dir", default=".treue", help="where the twin's local.json is (or will be)")
    parser.add_argument("--template", default="cdk.out/Treue.template.json", help="template of a twin to start")
    parser.add_argument("--batch", type=_batch_size, default=None,
                        help=f"lines in the batch (default: DEMO_BATCH, else {DEFAULT_BATCH})")
    args = parser.parse_args(argv)
    if args.batch is None:
        try:
            args.batch = _batch_size(os.environ.get("DEMO_BATCH") or str(DEFAULT_BATCH))
        except argparse.ArgumentTypeError as err:
            parser.error(f"DEMO_BATCH: {err}")
    state_file = (Path(args.state_dir) / "local.json").resolve()
    logs = state_file.parent / "logs"
    began = time.monotonic()
    interrupts = signal.getsignal(signal.SIGINT)
    twin: subprocess.Popen | None = None
    code, twin_seconds = 0, 0.0
    try:
        state = _read_state(state_file)
        if not _alive(state):
            print(f"No twin running; starting one on port {args.port} (about a minute) …", flush=True)
            twin = start_twin(args.port, state_file.parent, str(Path(args.template).resolve()), logs / "twin.out")
            state = wait_for_twin(twin, state_file, state.get("started_at"), logs / "twin.out")
            twin_seconds = time.monotonic() - began
            print(f"Twin started in {twin_seconds:.0f} s; its output: {logs / 'twin.out'}")
        print(f"Twin at {state['url']}, program {state['program_id']}; batch of {args.batch:,} lines", flush=True)
        walk(Api(state), state, state_file, args.batch, fresh_twin=twin is not None)
        total = time.monotonic() - began
        print(f"\nDemo complete in {total:.0f} s" + (f" ({twin_seconds:.0f} s of it starting the twin)"
                                                     if twin else "") + ".")
        print(f"Next: the API reference at {state['url']}/docs; the functions' logs in {logs}/; "
              "README.md from the Quickstart on (finance, brands, webhooks, the CLI).")
        if twin is None:
            print(f"The twin keeps running at {state['url']}.")
    except DemoFailed as err:
        _ignore_interrupts()
        print(f"\nDemo failed after {time.monotonic() - began:.0f} s: {err}", file=sys.stderr, flush=True)
        print(f"The functions' logs: {logs}/", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        _ignore_interrupts()
        print(f"\nInterrupted after {time.monotonic() - began:.0f} s.", file=sys.stderr, flush=True)
        code = 130
    except Exception as err:  # a bug in the walk (an answer of an unexpected shape): one line, the rest in a file
        _ignore_interrupts()
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "demo-error.log").write_text(traceback.format_exc())
        print(f"\nDemo failed: {_one_line(f'{type(err).__name__}: {err}')} (traceback in {logs / 'demo-error.log'})",
              file=sys.stderr, flush=True)
        code = 1
    finally:
        if twin is not None:
            _ignore_interrupts()
            print("Stopping the twin the demo started …", flush=True)
            print(f"The twin {stop_twin(twin)}.", flush=True)
        try:
            signal.signal(signal.SIGINT, interrupts)
        except (ValueError, TypeError):
            pass
    return code


if __name__ == "__main__":
    sys.exit(main())
