"""The partner API's routes, each declared once: method, path, the function serving it, its handler, the key
scopes allowed to call it, and its operation id, tag and summary.

The API functions answer their routes from here (``treue.handlers.http.make_app``; the scope check reads it),
the stack creates the API Gateway methods from it (``infra.stack``) and the OpenAPI document is built from it
and the handlers' signatures (``treue.openapi``; of the public routes it lists the document itself). Data
only: importing it costs nothing at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass

from treue.core.keys import Scope

ANY = (Scope.PARTNER, Scope.ADMIN, Scope.FINANCE)
WRITE = (Scope.PARTNER, Scope.ADMIN)
FINANCE = (Scope.FINANCE, Scope.ADMIN)
ADMIN = (Scope.ADMIN,)
PUBLIC: tuple[Scope, ...] = ()  # no API key: the OpenAPI document and the reference page
# The answers API Gateway sends as bytes (the API's binaryMediaTypes): a function answers them base64-encoded,
# and the gateway decodes them only for a request whose first Accept type is one of them
BINARY_MEDIA_TYPES = ("application/pdf",)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway / OpenAPI form: /v1/orders/{order_id}
    function: str  # the stack's function (construct id) that serves it
    handler: str  # the function in treue.handlers.<module of that function> that answers it
    scopes: tuple[Scope, ...]
    operation_id: str
    tag: str
    summary: str

    @property
    def public(self) -> bool:
        return not self.scopes


# fmt: off
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/members", "Enrollment", "enroll", WRITE, "enrollMember", "Members",
          "Enroll a member"),
    Route("GET", "/v1/members", "Enrollment", "find_member", ANY, "findMember", "Members",
          "Find a member by one identifier"),
    Route("GET", "/v1/members/{member_id}", "Enrollment", "get_member", ANY, "getMember", "Members",
          "Get a member"),
    Route("GET", "/v1/members/{member_id}/referrals", "Enrollment", "member_referrals", ANY, "listMemberReferrals",
          "Members", "The member's referral code, who referred them, and the members they referred"),
    Route("POST", "/v1/members/{member_id}/purchases", "Accrual", "purchase", WRITE, "accruePurchase", "Points",
          "Accrue points for a purchase (exactly once per transaction_id)"),
    Route("POST", "/v1/members/{member_id}/returns", "Accrual", "member_return", WRITE, "recordMemberReturn", "Points",
          "Reverse the points a returned purchase, or part of it, earned (exactly once per return_id)"),
    Route("POST", "/v1/members/{member_id}/activities", "Accrual", "activity", WRITE, "recordMemberActivity",
          "Points", "Points for an activity by the activity rules (exactly once per reference; 0 with the reason)"),
    Route("POST", "/v1/members/{member_id}/adjustments", "Accrual", "adjustment", ADMIN, "adjustMemberPoints", "Points",
          "Correct a member's points (admin scope)"),
    Route("GET", "/v1/members/{member_id}/balance", "Accrual", "balance", ANY, "getMemberBalance", "Points",
          "A member's point balance"),
    Route("GET", "/v1/members/{member_id}/ledger", "Accrual", "ledger", ANY, "getMemberLedger", "Points",
          "A member's statement, newest first"),
    Route("GET", "/v1/members/{member_id}/statement", "Accrual", "statement", ANY, "getMemberMonthlyStatement",
          "Points", "A member's monthly statement: opening, earned, redeemed, expired, reversed, adjusted, closing "
          "and the month's entries, as JSON, CSV or PDF"),
    Route("GET", "/v1/members/{member_id}/tier", "Accrual", "member_tier", ANY, "getMemberTier", "Points",
          "A member's tier: since, until, progress to the next, what keeps it, and the projected tier"),
    Route("POST", "/v1/rules/simulate", "Accrual", "simulate", WRITE, "simulatePurchase", "Points",
          "What a purchase would earn a member now, per rule and line, without posting anything"),
    Route("GET", "/v1/members/{member_id}/orders", "Orders", "member_orders", ANY, "listMemberOrders", "Orders",
          "A member's orders, newest first"),
    Route("GET", "/v1/catalog", "Catalog", "list_catalog", ANY, "listCatalogItems", "Catalog",
          "List the catalog, priced in the program's points"),
    Route("GET", "/v1/catalog/{item_id}", "Catalog", "get_item", ANY, "getCatalogItem", "Catalog",
          "One catalog item, priced in the program's points"),
    Route("POST", "/v1/orders", "Orders", "place", WRITE, "createOrder", "Orders",
          "Place an order: hold the points and start the payout (Idempotency-Key required)"),
    Route("GET", "/v1/orders/{order_id}", "Orders", "get_order", ANY, "getOrder", "Orders",
          "An order: status, history, points, masked codes"),
    Route("POST", "/v1/orders/{order_id}/cancel", "Orders", "cancel", WRITE, "cancelOrder", "Orders",
          "Cancel a completed order where its policy allows; refunds points"),
    Route("GET", "/v1/orders/{order_id}/codes", "Orders", "codes", WRITE, "revealOrderCodes", "Orders",
          "Reveal an order's codes in clear (recorded)"),
    Route("GET", "/v1/donations/totals", "Orders", "donation_totals", ANY, "getDonationTotals", "Donations",
          "Donations per charity and currency"),
    Route("GET", "/v1/donations/{donation_id}", "Orders", "donation", ANY, "getDonation", "Donations",
          "A donation receipt"),
    Route("POST", "/v1/vouchers/validate", "Vouchers", "validate", WRITE, "validateVoucher", "Vouchers",
          "Check a voucher code: value, status, expiry"),
    Route("POST", "/v1/vouchers/redeem", "Vouchers", "redeem", WRITE, "redeemVoucher", "Vouchers",
          "Redeem a voucher at the till (single use; reference makes it idempotent)"),
    Route("POST", "/v1/vouchers/void", "Vouchers", "void", WRITE, "voidVoucher", "Vouchers",
          "Void an unredeemed voucher"),
    Route("POST", "/v1/finance/fundings", "Finance", "fund", ADMIN, "createFunding", "Finance",
          "Top up the program budget (admin; Idempotency-Key required)"),
    Route("POST", "/v1/finance/cash-refunds", "Finance", "refund_cash", ADMIN, "recordCashRefund", "Finance",
          "Record that a failed or canceled points + cash order's cash was paid back to the member (admin)"),
    Route("GET", "/v1/finance/budget", "Finance", "get_budget", FINANCE, "getBudget", "Finance",
          "Budget balances per currency and the movements, newest first (both of one currency with ?currency=)"),
    Route("PUT", "/v1/finance/budget/{currency}", "Finance", "set_budget", ADMIN, "setBudgetThreshold", "Finance",
          "Set the low-balance threshold of one currency (admin)"),
    Route("GET", "/v1/finance/payouts", "Finance", "payouts", FINANCE, "listPayouts", "Finance",
          "Orders with face value, fee, currency, status, provider reference"),
    Route("GET", "/v1/finance/journal", "Finance", "journal", FINANCE, "getJournal", "Finance",
          "The program-wide ledger: postings (points) and budget movements (money)"),
    Route("GET", "/v1/finance/trial-balance", "Finance", "trial_balance", FINANCE, "getTrialBalance", "Finance",
          "Every account per unit and each unit's total (0)"),
    Route("GET", "/v1/finance/liability", "Finance", "liability", FINANCE, "getLiability", "Finance",
          "Outstanding points and their money value"),
    Route("GET", "/v1/finance/reconciliation", "Finance", "reconciliation", FINANCE, "getReconciliation", "Finance",
          "A day's orders against ledger, budget and provider; differences"),
    Route("GET", "/v1/finance/kpis", "Finance", "kpis", FINANCE, "getKpis", "Finance",
          "Members, activity, points earned/redeemed/expired, rates, liability"),
    Route("GET", "/v1/finance/audit", "Finance", "audit_trail", FINANCE, "getAuditTrail", "Finance",
          "The audit trail in chain order (sealed records)"),
    Route("POST", "/v1/finance/reports", "Finance", "create_report", FINANCE, "createReport", "Reports",
          "Compute a reconciliation, KPIs, payouts or the journal of any size asynchronously (Idempotency-"
          "Key required)"),
    Route("GET", "/v1/finance/reports", "Finance", "list_reports", FINANCE, "listReports", "Reports",
          "The program's report jobs, newest first"),
    Route("GET", "/v1/finance/reports/{report_id}", "Finance", "get_report", FINANCE, "getReport", "Reports",
          "A report job: status, progress and, once completed, a short-lived download URL of the result "
          "and a summary"),
    Route("POST", "/v1/rewards", "Rewards", "issue", WRITE, "issueReward", "Rewards",
          "Issue a gift card or voucher paid from the budget (Idempotency-Key required)"),
    Route("GET", "/v1/rewards/{reward_id}", "Rewards", "get_reward", ANY, "getReward", "Rewards",
          "A reward: status, history, recipient, masked codes"),
    Route("GET", "/v1/rewards/{reward_id}/codes", "Rewards", "codes", WRITE, "revealRewardCodes", "Rewards",
          "Reveal a reward's codes in clear (recorded), to deliver yourself"),
    Route("POST", "/v1/batches", "Batches", "submit", WRITE, "submitBatch", "Batches",
          "Issue rewards in bulk: inline lines or an uploaded CSV (Idempotency-Key required)"),
    Route("GET", "/v1/batches", "Batches", "list_batches", ANY, "listBatches", "Batches",
          "The program's batches, newest first"),
    Route("POST", "/v1/batches/uploads", "Batches", "upload", WRITE, "createBatchUpload", "Batches",
          "A pre-signed URL to PUT a batch CSV to (for up to 50,000 lines)"),
    Route("GET", "/v1/batches/{batch_id}", "Batches", "get_batch", ANY, "getBatch", "Batches",
          "A batch: status and line counts per status"),
    Route("GET", "/v1/batches/{batch_id}/lines", "Batches", "lines", ANY, "listBatchLines", "Batches",
          "A batch's lines in order (JSON, or CSV with Accept: text/csv)"),
    Route("POST", "/v1/batches/{batch_id}/retry", "Batches", "retry", WRITE, "retryBatch", "Batches",
          "Re-drive the lines not issued (failed lines get a new attempt)"),
    Route("POST", "/v1/webhooks", "Webhooks", "register", WRITE, "registerWebhook", "Webhooks",
          "Register an endpoint; its signing secret is shown once"),
    Route("GET", "/v1/webhooks", "Webhooks", "list_endpoints", ANY, "listWebhooks", "Webhooks",
          "The program's endpoints with their delivery health"),
    Route("GET", "/v1/webhooks/{endpoint_id}", "Webhooks", "get_endpoint", ANY, "getWebhook", "Webhooks",
          "One endpoint: status (active | failing), failures, last attempts"),
    Route("DELETE", "/v1/webhooks/{endpoint_id}", "Webhooks", "delete_endpoint", WRITE, "deleteWebhook", "Webhooks",
          "Delete an endpoint; pending deliveries to it are dropped"),
    Route("POST", "/v1/webhooks/{endpoint_id}/rotate-secret", "Webhooks", "rotate", WRITE, "rotateWebhookSecret",
          "Webhooks",
          "A new secret (shown once); the previous one keeps signing for expire_previous_in_hours"),
    Route("GET", "/v1/events", "Webhooks", "list_events", ANY, "listEvents", "Events",
          "Every event of the program in order; page with the returned cursor as after="),
    Route("GET", "/v1/events/{event_id}", "Webhooks", "get_event", ANY, "getEvent", "Events",
          "One event"),
    Route("POST", "/v1/events/{event_id}/redeliver", "Webhooks", "redeliver", WRITE, "redeliverEvent", "Events",
          "Deliver an event again (to one endpoint or every subscriber)"),
    Route("GET", "/v1/queue-senders", "QueueSenders", "list_senders", ADMIN, "listQueueSenders", "Queue senders",
          "The IAM principals whose accrual queue messages count for this program"),
    Route("GET", "/v1/queue-senders/{principal_id}", "QueueSenders", "get_sender", ADMIN, "getQueueSender",
          "Queue senders",
          "One queue sender of this program"),
    Route("PUT", "/v1/queue-senders/{principal_id}", "QueueSenders", "put_sender", ADMIN, "putQueueSender",
          "Queue senders",
          "Register an IAM role (AROA…) or user (AIDA…) unique id as a sender of accrual messages for this"
          " program; 201 when new, 200 when it was already registered here (description updated), 409 when"
          " another program has it"),
    Route("DELETE", "/v1/queue-senders/{principal_id}", "QueueSenders", "delete_sender", ADMIN, "deleteQueueSender",
          "Queue senders",
          "Stop accepting the principal's messages (warm consumers notice within a minute)"),
    Route("GET", "/v1/program", "Program", "get_program", ANY, "getProgram", "Program",
          "The program's settings: earn rate, point value, currency, country, markup, fx rates, version (the ETag)"),
    Route("PATCH", "/v1/program", "Program", "patch_program", ADMIN, "patchProgram", "Program",
          "Change settings with a JSON merge patch (admin): each change is a new version; If-Match: \"<version>\" "
          "refuses a stale change (412); accruals use it once the functions' program cache expires (60 s)"),
    Route("GET", "/v1/program/versions", "Program", "list_versions", ANY, "listProgramVersions", "Program",
          "The settings' versions, newest first: each with the whole settings, who, when and what changed"),
    Route("GET", "/v1/program/versions/{version}", "Program", "get_version", ANY, "getProgramVersion", "Program",
          "One version of the settings"),
    Route("POST", "/v1/rules", "Rules", "create_rule", ADMIN, "createRule", "Rules",
          "Create an earning rule (admin; Idempotency-Key required): version 1, active"),
    Route("GET", "/v1/rules", "Rules", "list_rules", ANY, "listRules", "Rules",
          "The earning rules as they stand (their current versions), by status and trigger"),
    Route("GET", "/v1/rules/{rule_id}", "Rules", "get_rule", ANY, "getRule", "Rules",
          "An earning rule as it stands, with the list of its versions (the version is the ETag)"),
    Route("PUT", "/v1/rules/{rule_id}", "Rules", "put_rule", ADMIN, "putRule", "Rules",
          "Replace a rule's definition (admin): a new version, in force from now; the same definition writes "
          "nothing; If-Match: \"<version>\" refuses a stale change (412)"),
    Route("DELETE", "/v1/rules/{rule_id}", "Rules", "delete_rule", ADMIN, "retireRule", "Rules",
          "Retire a rule (admin): never in force from now on, kept with its versions; retiring twice answers it"),
    Route("GET", "/v1/rules/{rule_id}/versions/{version}", "Rules", "get_rule_version", ANY, "getRuleVersion",
          "Rules", "One version of an earning rule, whole"),
    Route("POST", "/v1/segments", "Segments", "create_segment", ADMIN, "createSegment", "Segments",
          "Create a custom segment under its id (admin): the same id and definition again answer it, another is 409"),
    Route("GET", "/v1/segments", "Segments", "list_segments", FINANCE, "listSegments", "Segments",
          "Every segment (built-in and custom) with its member count and the members per tier, from the snapshot "
          "the scheduled count writes (computed_at)"),
    Route("GET", "/v1/segments/{segment_id}", "Segments", "get_segment", FINANCE, "getSegment", "Segments",
          "A custom segment as it stands, with the list of its versions (the version is the ETag)"),
    Route("PUT", "/v1/segments/{segment_id}", "Segments", "put_segment", ADMIN, "putSegment", "Segments",
          "Replace a custom segment's definition (admin): a new version; If-Match: \"<version>\" refuses a stale "
          "change (412)"),
    Route("DELETE", "/v1/segments/{segment_id}", "Segments", "delete_segment", ADMIN, "retireSegment", "Segments",
          "Retire a custom segment (admin): kept with its versions, never evaluated again"),
    Route("GET", "/v1/segments/{segment_id}/versions/{version}", "Segments", "get_segment_version", FINANCE,
          "getSegmentVersion", "Segments", "One version of a custom segment, whole"),
    Route("GET", "/v1/members/{member_id}/segments", "Segments", "member_segments", ANY, "getMemberSegments",
          "Segments", "The segments a member is in now, each with the reason (and since when, where known)"),
    Route("GET", "/v1/members/{member_id}/offers", "Segments", "member_offers", ANY, "getMemberOffers", "Segments",
          "What fits the member now: earning rules they can earn by (with potential points) and catalog items "
          "they can afford or nearly afford, ranked"),
    Route("POST", "/v1/members/{member_id}/memberships", "Memberships", "start_membership", WRITE,
          "startMembership", "Memberships", "Record a paid membership the partner's payment provider took the fee for "
          "(exactly once per payment_reference)"),
    Route("GET", "/v1/members/{member_id}/memberships", "Memberships", "list_memberships", ANY, "listMemberships",
          "Memberships", "A member's paid memberships, oldest first"),
    Route("POST", "/v1/members/{member_id}/memberships/{membership_id}/renew", "Memberships", "renew_membership",
          WRITE, "renewMembership", "Memberships", "Pay one more period (exactly once per payment_reference)"),
    Route("POST", "/v1/members/{member_id}/memberships/{membership_id}/cancel", "Memberships", "cancel_membership",
          WRITE, "cancelMembership", "Memberships", "Cancel at the period's end (benefits until then)"),
    Route("GET", "/v1/openapi.json", "Docs", "handler", PUBLIC, "getOpenApiDocument", "Documentation",
          "This document (the API reference page that reads it: GET /docs)"),
    Route("GET", "/docs", "Docs", "handler", PUBLIC, "getApiReference", "Documentation",
          "The API reference page (not in the OpenAPI document)"),
    Route("GET", "/docs/{asset}", "Docs", "handler", PUBLIC, "getApiReferenceAsset", "Documentation",
          "A file of the API reference page (not in the OpenAPI document)"),
)
# fmt: on


def of_function(function: str) -> tuple[Route, ...]:
    """The routes one function serves."""
    return tuple(r for r in ROUTES if r.function == function)
