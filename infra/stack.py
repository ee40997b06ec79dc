"""The Treue stack: storage, the partner API and one function per capability.

The functions are a table (``FUNCTIONS``: one ``FunctionSpec`` each, with its handler, sizing, what it may touch
and the capability it is part of) that ``TreueStack`` builds in a loop; the capability constructs
(infra/components.py) then take their functions by role. The API's methods come from the route table
(``treue.routes.ROUTES``), the alarms from the tables below and the functions' own specs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Aspects, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import code, layers
from infra.components import (
    AccrualQueue,
    BatchFiles,
    BatchWorkflow,
    CheckovFunctionFindings,
    CodeKeys,
    Function,
    Monitoring,
    PartnerApi,
    PayoutWorkflow,
    ProgressStream,
    ReportJobs,
    Storage,
    WebhookDeliveries,
    acknowledge,
    powertools_layer,
)
from treue.routes import ROUTES  # functions/ is on the path (infra.components)

# AWS authorizes each item of a TransactWriteItems as the item's own action (a grant of
# "dynamodb:TransactWriteItems" lets no item through): a function that writes in transactions needs these.
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
TABLE_READ = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem")
# A record's final transaction deletes its watch-list marker (treue.store.watchlist)
FINAL_STEP = ("dynamodb:DeleteItem",)
# Reserved concurrency of the batch functions (cdk.json context or -c key=value): the Batches API, the
# IssueLine task (a Distributed Map runs up to 20 lines at a time per batch run: 60 = three runs at full
# speed), and each of BeginRun/FailLine/FinishRun. 60 + 3 × 5 + 30 = 105 of the account's 1,000. One tenant's
# batches cannot take the account's concurrency from every other function; a line throttled by it is retried
# by the workflow (Lambda.TooManyRequestsException).
BATCH_CONCURRENCY = {"batches_api_concurrency": 30, "batch_line_concurrency": 60, "batch_step_concurrency": 5}
# X-Ray sampling of the API stage (cdk.json context or -c key=value): the fixed rate (0 to 1) of requests
# traced, after the reservoir of traced requests per second. Without a rule of its own the stage would
# sample by the account's default rule, whose 1 a second traces most requests at a million a month.
TRACE_SAMPLING = {"xray_sampling_rate": 0.05, "xray_sampling_reservoir": 0}
# Every function's environment: pydantic looks up plugins in every installed package's entry points when it
# builds its first validator (4 to 5 ms of a cold start); the functions use none
RUNTIME_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


@dataclass(frozen=True)
class Schedule:
    """A function run on a schedule by an EventBridge rule; failed runs go to its dead-letter queue."""

    rule: str  # the rule's construct id
    minutes: int
    description: str
    dead_letters: str  # the description of the alarm on its dead-letter queue


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the stack: what the loop in ``TreueStack`` builds and grants."""

    id: str  # construct id; a route's ``function`` (treue.routes) and the alarms name it
    handler: str
    description: str
    # its DynamoDB actions; a function with any gets the table's name and the data key (encrypt/decrypt)
    table: tuple[str, ...] = ()
    timeout: int = 10  # seconds
    memory: int = 512
    concurrency: str | None = None  # the context key (BATCH_CONCURRENCY) of its reserved concurrency
    # the reward code keys: "ids" (their ids in the environment only), "seal", "lookup", "reveal" (and the ids)
    codes: tuple[str, ...] = ()
    part_of: tuple[str, str] | None = None  # (capability construct id, the function's role in it)
    starts: tuple[str, ...] = ()  # workflows (WORKFLOWS) it starts: the grant and the machine's ARN in its env
    describes: tuple[str, ...] = ()  # workflows whose executions it reads (states:DescribeExecution)
    bucket: str = ""  # the batch bucket: "name" (in its environment) or "read-write" (and the name)
    environment: tuple[tuple[str, str], ...] = ()
    schedule: Schedule | None = None
    static: bool = False  # its code carries treue/static (the API reference page)
    errors: str = ""  # the description of its Errors alarm, when more than "<id> function raised errors."
    layers: tuple[str, ...] = ()  # layers of infra/layers.py it carries besides Powertools' (e.g. "pdf")


def _task(workflow: str, role: str, id: str, handler: str, description: str, *, codes: tuple[str, ...] = (),
          final: bool = False) -> FunctionSpec:
    """A task function of the payout (infra/payout.asl.json) or batch (infra/batch.asl.json) workflow, ``role``
    its substitution name there; ``final``: it ends records (and deletes their watch-list markers)."""
    table = (*TABLE_READ, *TABLE_WRITE, *(FINAL_STEP if final else ()))
    if workflow == "Payout":
        return FunctionSpec(id, f"treue.handlers.payout.{handler}", description, table, timeout=30,
                            codes=("ids", *codes), part_of=(workflow, role))
    concurrency = "batch_line_concurrency" if role == "IssueLineFunction" else "batch_step_concurrency"
    return FunctionSpec(id, f"treue.handlers.batch_tasks.{handler}", description, table, timeout=60,
                        concurrency=concurrency, codes=("ids", *codes), part_of=(workflow, role))


READ_WRITE = (*TABLE_READ, *TABLE_WRITE)
# endpoints on 127.0.0.1 only on the twin (which sets it to "true"): checked at registration and again by the
# sender at every delivery
NO_LOCAL_WEBHOOKS = (("ALLOW_LOCAL_WEBHOOKS", "false"),)

# fmt: off
FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("Authorizer", "treue.handlers.authorizer.handler", "API key authorizer",
                 ("dynamodb:GetItem",), memory=256, part_of=("PartnerApi", "authorizer")),
    # enrollment reads the referrer (GetItem), the enrollment rules in force (Query) and their budgets
    # (BatchGetItem), and lists a member's referrals (Query)
    FunctionSpec("Enrollment", "treue.handlers.enrollment.handler",
                 "Member enrollment (referrals, welcome bonus) and lookup", (*TABLE_READ, *TABLE_WRITE)),
    # accrual reads the earning rules in force (Query) and their counters (BatchGetItem)
    # the monthly statement's PDF (fpdf2) comes in its own layer, imported by the PDF answer only
    FunctionSpec("Accrual", "treue.handlers.accrual.handler",
                 "Purchases (by the earning rules), simulate, adjustments, balances, statements",
                 (*TABLE_READ, *TABLE_WRITE), layers=("pdf",)),
    FunctionSpec("AccrualQueueConsumer", "treue.handlers.accrual_queue.handler", "Accrual from the POS/shop queue",
                 (*TABLE_READ, *TABLE_WRITE), timeout=30, part_of=("AccrualQueue", "consumer")),
    FunctionSpec("Catalog", "treue.handlers.catalog.handler", "Catalog priced in program points",
                 ("dynamodb:GetItem", "dynamodb:Query")),
    # an order first activates the member's pending points that are due (their pending item: Delete)
    FunctionSpec("Orders", "treue.handlers.orders.handler", "Orders, code reveal, donation receipts",
                 (*READ_WRITE, "dynamodb:DeleteItem"), timeout=15, codes=("reveal",), starts=("Payout",)),
    FunctionSpec("Vouchers", "treue.handlers.vouchers.handler", "Voucher validate/redeem/void at the till",
                 ("dynamodb:GetItem", "dynamodb:UpdateItem"), codes=("lookup",)),
    # fundings and thresholds are transactions of Put (movement, guard) and Update (balance) items; a report
    # job (POST /v1/finance/reports) is a Put of the report and its idempotency guard
    FunctionSpec("Finance", "treue.handlers.finance.handler",
                 "Budget, fundings, payouts, journal, trial balance, reconciliation, KPIs, audit",
                 READ_WRITE, timeout=29, memory=1024, part_of=("ReportJobs", "requester")),
    # The audit sealer chains the records every transaction appends (treue.store.audit)
    FunctionSpec("AuditSealer", "treue.handlers.audit.handler", "Chains new audit records per program",
                 READ_WRITE, timeout=60, schedule=Schedule(
                     "AuditSealSchedule", 1, "Seal new audit records into each program's chain",
                     "Scheduled audit sealer runs failed after Lambda's retries; the next run seals what they left.")),
    # BatchGetItem: the budget check reads balance and settings at once
    FunctionSpec("Rewards", "treue.handlers.rewards.handler", "Budget-paid gift cards and vouchers",
                 READ_WRITE, timeout=15, codes=("reveal",), starts=("Payout",)),
    # one transaction puts (or deletes) the principal's binding, the program's list entry and the audit record
    FunctionSpec("QueueSenders", "treue.handlers.queue_senders.handler",
                 "IAM principals whose accrual queue messages count for a program",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem")),
    # a change of the settings is one transaction of Put items: the current settings (conditioned on the version
    # read), the version item(s) and the audit record; the history is a Query
    FunctionSpec("Program", "treue.handlers.program.handler",
                 "Program settings for every key; changes as versions (admin)",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")),
    # earning rules: creating, a new version and retiring are each one transaction of Put items (the idempotency
    # guard, the current item conditioned on the version read, the version item, the audit record; a birthday or
    # anniversary rule's program item for the Occasions schedule); reads are GetItem and Query (the rule's
    # partition, the index's list of rules)
    FunctionSpec("Rules", "treue.handlers.rules.handler",
                 "Earning rules for every key; changes as versions (admin)",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem")),
    # Occasions lists its programs and saves its place (Query, UpdateItem), walks the members (Query on gsi1,
    # BatchGetItem of their profiles), reads the rules in force (Query), the program, the counters and the
    # guards (GetItem, BatchGetItem) and pays awards (transactions of Put/Update/ConditionCheck items)
    FunctionSpec("Occasions", "treue.handlers.occasions.handler",
                 "Birthday and membership anniversary rules, paid daily", (*TABLE_READ, *TABLE_WRITE), timeout=300,
                 schedule=Schedule(
                     "OccasionsSchedule", 60, "Pay the day's birthdays and membership anniversaries (each program "
                     "once a day)",
                     "Scheduled occasions runs failed after Lambda's retries; the next run pays what they left.")),
    # register, rotate and delete are transactions of Put/Update/Delete items; webhook secrets are sealed like
    # codes; redelivery queues deliveries
    FunctionSpec("Webhooks", "treue.handlers.webhooks.handler", "Webhook endpoints and the event log",
                 ("dynamodb:GetItem", "dynamodb:Query", *TABLE_WRITE, "dynamodb:DeleteItem"), timeout=15,
                 codes=("seal",), part_of=("WebhookDeliveries", "requester"), environment=NO_LOCAL_WEBHOOKS),
    FunctionSpec("WebhookFanout", "treue.handlers.webhook_fanout.handler",
                 "New events from the table stream to one delivery per subscribed endpoint",
                 ("dynamodb:Query",), timeout=60, part_of=("WebhookDeliveries", "fanout")),
    # points.earned from the table stream: reads the posting, member, balance and the rules in force (GetItem,
    # Query, BatchGetItem), pays referrals and milestones as awards (transactions of Put/Update/ConditionCheck)
    FunctionSpec("Progress", "treue.handlers.progress.handler",
                 "Referrals completed and milestones reached by purchases (points.earned from the table stream)",
                 (*TABLE_READ, *TABLE_WRITE), timeout=60, part_of=("ProgressStream", "consumer")),
    FunctionSpec("WebhookSender", "treue.handlers.webhook_sender.handler", "Signed webhook deliveries with backoff",
                 ("dynamodb:GetItem", "dynamodb:UpdateItem"), timeout=60, codes=("reveal",),
                 part_of=("WebhookDeliveries", "sender"), environment=NO_LOCAL_WEBHOOKS),
    _task("Payout", "VerifyHoldFunction", "PayoutVerifyHold", "verify_hold", "Payout: verify the member's hold"),
    _task("Payout", "IssueVoucherFunction", "PayoutIssueVoucher", "issue_voucher",
          "Payout: generate and seal voucher codes", codes=("seal", "lookup")),
    _task("Payout", "IssueGiftCardFunction", "PayoutIssueGiftCard", "issue_gift_card",
          "Payout: issue gift cards at the provider", codes=("seal",)),
    _task("Payout", "RecordDonationFunction", "PayoutRecordDonation", "record_donation", "Payout: record a donation"),
    _task("Payout", "DeliverFunction", "PayoutDeliver", "deliver", "Payout: mark delivered, write reward.delivered"),
    _task("Payout", "CaptureFunction", "PayoutCapture", "capture", "Payout: capture the held points", final=True),
    _task("Payout", "ReleaseHoldFunction", "PayoutReleaseHold", "release",
          "Payout: undo and release the held points", final=True),
    # a retry reads the batch's last run; items files, uploads and pre-signed PUT URLs in the batch bucket
    FunctionSpec("Batches", "treue.handlers.batches.handler",
                 "Bulk issuance: validate, pay for and start batches; lines, retries, uploads",
                 (*TABLE_READ, "dynamodb:BatchWriteItem", *TABLE_WRITE, *FINAL_STEP), timeout=29, memory=1024,
                 concurrency="batches_api_concurrency", starts=("Batch",), describes=("Batch",), bucket="read-write"),
    _task("Batch", "BeginFunction", "BatchBegin", "begin", "Batch: mark a run begun"),
    _task("Batch", "IssueLineFunction", "BatchIssueLine", "issue_line",
          "Batch: issue one line (its reward, start to finish)", codes=("seal", "lookup"), final=True),
    _task("Batch", "FailLineFunction", "BatchFailLine", "fail_line", "Batch: fail a line whose retries are used up",
          final=True),
    _task("Batch", "FinishFunction", "BatchFinish", "finish",
          "Batch: count the lines, end the run, write batch.completed", final=True),
    FunctionSpec("Docs", "treue.handlers.docs.handler", "OpenAPI document and the API reference page (/docs)",
                 memory=128, static=True),
    # Finance report jobs: the worker pages through the program's listings with its time budget, checkpoints
    # on the report item and continues through the report queue. Reads: the report, the provider's records,
    # donations, the program (GetItem); listings, accounts, budgets (Query, gsi1); checkpoints (UpdateItem)
    FunctionSpec("ReportWorker", "treue.handlers.report_worker.handler",
                 "Finance report jobs: reconciliation, KPIs, payouts, journal of any size",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"), timeout=300, memory=1024,
                 part_of=("ReportJobs", "worker")),
    # segments and offers: custom segments are transactions of Put items (current, version, audit record) and an
    # Update of the snapshot item; a member's facts are a GetItem and a Query; offers read the rules in force
    # (Query), their counters (BatchGetItem) and the catalog (Query); GET /v1/segments lists the program (UpdateItem)
    FunctionSpec("Segments", "treue.handlers.segments.handler",
                 "Custom segments, member counts, a member's segments and offers",
                 (*TABLE_READ, "dynamodb:PutItem", "dynamodb:UpdateItem")),
    # counts each listed program's members per segment and tier: the snapshots (Query on gsi1, GetItem), the
    # newest event (Query on gsi1), the balances (Query on gsi1), each member's months and tier (Query); the walk's
    # checkpoints and the snapshot (UpdateItem)
    FunctionSpec("SegmentCounts", "treue.handlers.segment_counts.handler",
                 "Counts each program's members per segment and per tier (the snapshot of GET /v1/segments)",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"), timeout=300, memory=1024,
                 schedule=Schedule("SegmentCountsSchedule", 5, "Count the members per segment and tier",
                                   "Scheduled segment counts failed after Lambda's retries; the next run continues "
                                   "the walk.")),
    # The tier review (treue.logic.tiers): due tier states from the sparse index (Query), their months (Query),
    # the program (GetItem); a change is one transaction (the TIER item's update, which keeps a paid membership's
    # grant, its audit record and the event: Put items)
    FunctionSpec("TierReview", "treue.handlers.tier_review.handler",
                 "Tiers whose period ended: kept when requalified, else down to the level reached",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"), timeout=300,
                 schedule=Schedule("TierReviewSchedule", 1440, "Review the tiers whose period ended (daily)",
                                   "Scheduled tier reviews failed after Lambda's retries; the next run reviews "
                                   "what they left (a member keeps the tier until then).")),
    # paid memberships (treue.logic.memberships): a start or renewal is one transaction (idempotency guard, the
    # membership, the TIER item's grant, the welcome posting with its balance and accounts, the fee's money
    # movement and account, the event, audit records: Put/Update/ConditionCheck); reads are GetItem and Query
    FunctionSpec("Memberships", "treue.handlers.memberships.handler",
                 "Paid memberships: start, renew, cancel, list", (*TABLE_READ, *TABLE_WRITE)),
    # the daily end of lapsed memberships: due ones from the sparse index (Query), the membership, the TIER item and
    # the program (GetItem); an end is one transaction (the membership, the grant's removal, the event, the audit
    # record: Put/Update)
    FunctionSpec("MembershipReview", "treue.handlers.membership_review.handler",
                 "Paid memberships whose period ended: ended, their tier grant removed",
                 ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"), timeout=300,
                 schedule=Schedule("MembershipReviewSchedule", 1440, "End the paid memberships whose period ended "
                                   "(daily)", "Scheduled membership reviews failed after Lambda's retries; the next "
                                   "run ends what they left (a lapsed membership grants nothing meanwhile).")),
    # Points over time (treue.logic.lifecycle): due pending points and expiry buckets from the sparse index (Query),
    # the member's balance, pending items and buckets (GetItem, Query), the program (GetItem); an activation or an
    # expiry is one transaction (the guard, the entry and its audit record, the balance, the account totals, the
    # event: Put/Update; the activated pending item: Delete); buckets whose date passed go (BatchWriteItem)
    FunctionSpec("PointsActivation", "treue.handlers.points_lifecycle.activate",
                 "Pending points whose days are over become available (hourly)",
                 (*TABLE_READ, *TABLE_WRITE, "dynamodb:DeleteItem"), timeout=300,
                 schedule=Schedule("PointsActivationSchedule", 60, "Activate pending points that are due (hourly)",
                                   "Scheduled activations failed after Lambda's retries; the next run activates "
                                   "what they left (balances count due points as available meanwhile).")),
    FunctionSpec("PointsExpiry", "treue.handlers.points_lifecycle.expire",
                 "Expired points leave the balance (hourly); points.expiring ahead of each date",
                 (*TABLE_READ, *TABLE_WRITE, "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"), timeout=900,
                 memory=1024,
                 schedule=Schedule("PointsExpirySchedule", 60, "Expire the points whose date has passed (hourly: a "
                                   "day's members over as many runs as they take; notices in the day's first run)",
                                   "Scheduled expiry runs failed after Lambda's retries; the next run expires what "
                                   "they left (each member once per day).")),
    # The sweeper settles what a dead function or workflow left open (treue.logic.sweeper): orders and
    # rewards never started or whose execution ended first, batch runs likewise; found through the
    # watch list on gsi1 (treue.store.watchlist), whose markers leave in each record's final transaction
    FunctionSpec("Sweeper", "treue.handlers.sweeper.handler",
                 "Starts or settles orders, rewards and batch runs left open by a dead function or workflow",
                 (*TABLE_READ, "dynamodb:DeleteItem", *TABLE_WRITE), timeout=120, starts=("Payout", "Batch"),
                 describes=("Payout", "Batch"), bucket="name",
                 schedule=Schedule("SweeperSchedule", 5, "Start or settle orders and batch runs left open",
                                   "Scheduled sweeper runs failed after Lambda's retries; the next run sweeps again."),
                 errors="Sweeper function raised errors: stuck orders or batch runs may stay open."),
)
# fmt: on


@dataclass(frozen=True)
class WorkflowSpec:
    environment: str  # the variable that holds its state machine's ARN in the functions that start it
    failed: str  # the description of its ExecutionsFailed alarm
    left_open: str  # what a timed-out or aborted execution leaves behind


WORKFLOWS = {
    "Payout": WorkflowSpec(
        "PAYOUT_STATE_MACHINE_ARN",
        "Payout executions failed: orders ended FAILED (points released) or a capture needs a redrive.",
        "their orders stopped short of COMPLETED or FAILED, points still held"),
    "Batch": WorkflowSpec(
        "BATCH_STATE_MACHINE_ARN",
        "A batch run failed outside its lines (BeginRun or FinishRun); GET the batch and retry it.",
        "their runs did not reach FinishRun, the unused cost still held"),
}

# Alarms on the queues that hold failures: alarm id → (capability, its queue, period in minutes, description)
QUEUE_ALARMS = {
    "AccrualDlqDepth": ("AccrualQueue", "dlq", 1,
                        "Accrual messages were dead-lettered; read their treue-error-reason attribute."),
    "WebhookDlqDepth": ("WebhookDeliveries", "dlq", 5,
                        "Webhook deliveries gave up after more than 24 hours; the events stay in GET /v1/events."),
    "WebhookStreamFailuresDepth": (
        "WebhookDeliveries", "stream_failures", 5,
        "The fan-out gave up on table stream records: their events were not queued for delivery; each message "
        "names the shard and sequence numbers; redeliver the events with POST /v1/events/{id}/redeliver."),
    "ProgressStreamFailuresDepth": (
        "ProgressStream", "stream_failures", 5,
        "The Progress function gave up on table stream records: referral or milestone payments of their purchases "
        "were not made; each message names the shard and sequence numbers of the points.earned events."),
    "ReportDlqDepth": (
        "ReportJobs", "dlq", 5,
        "Report job steps were dead-lettered; their reports were marked failed (GET /v1/finance/reports)."),
}


def tasks_of(workflow: str) -> dict[str, tuple[str, str, str]]:
    """A workflow's task functions: ASL substitution name → (construct id, handler function, description)."""
    return {s.part_of[1]: (s.id, s.handler.rsplit(".", 1)[1], s.description)
            for s in FUNCTIONS if s.part_of and s.part_of[0] == workflow}


PAYOUT_TASKS = tasks_of("Payout")
BATCH_TASKS = tasks_of("Batch")


class TreueStack(Stack):
    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.storage = Storage(self, "Storage")
        self.codes = CodeKeys(self, "CodeKeys")
        self.runtime = code.runtime(str(self.node.try_get_context("python_version") or code.PYTHON_VERSION))
        layer = powertools_layer(self, self._context("powertools_layer_version", 27), self.runtime)
        self.layers: dict[str, lambda_.LayerVersion] = {}  # infra/layers.py's, made for the functions that use them
        self.code = self._code()
        self.functions = {spec.id: self._function(spec, layer) for spec in FUNCTIONS}
        table_lid = self.get_logical_id(self.storage.table.node.default_child)
        acknowledge(self, f"AwsSolutions-IAM5[Resource::<{table_lid}.Arn>/index/*]",
                    "CDK's table grants include the table's one index (gsi1: journal, orders, balances, audit "
                    "chain); the actions stay the per-function lists (FunctionSpec.table).")
        self.files = BatchFiles(self, "BatchFiles", key=self.storage.key)
        self.workflows = self._workflows()
        self._capabilities()
        for spec in FUNCTIONS:
            self._wire(spec, self.functions[spec.id])
        self.api = self._api()
        # checkov findings on functions that depend on the finished stack (reserved concurrency, DLQs)
        Aspects.of(self).add(CheckovFunctionFindings())
        self.monitoring = Monitoring(self, "Monitoring")
        self._alarms()
        self._outputs()

    def _context(self, key: str, default: int) -> int:
        return int(self.node.try_get_context(key) or default)

    def _role(self, capability: str) -> dict[str, Function]:
        """The functions that are part of one capability, by their role in it."""
        return {s.part_of[1]: self.functions[s.id] for s in FUNCTIONS if s.part_of and s.part_of[0] == capability}

    def _code(self) -> dict[bool, lambda_.Code]:
        """The functions' code, and the Docs function's with the API reference page (Swagger UI, ~2 MB) and
        the OpenAPI document; with bytecode for the runtime where synth can compile it (infra/code.py)."""
        given = self.node.try_get_context("bytecode_python")
        built = {static: code.function_code(self.runtime.name.removeprefix("python"),
                                            () if static else code.DOCS_ONLY, given) for static in (False, True)}
        if not built[False][1]:
            Annotations.of(self).add_info(
                f"The functions' asset has no bytecode: no {self.runtime.name} here to compile it with, so each "
                "function compiles its modules at every cold start (infra/code.py; cdk context bytecode_python).")
        return {static: c for static, (c, _) in built.items()}

    def _function(self, spec: FunctionSpec, layer: lambda_.ILayerVersion) -> Function:
        """One function of the table with its environment and its grants on the table and the code keys."""
        env = {**RUNTIME_ENVIRONMENT, **({"TABLE_NAME": self.storage.table.table_name} if spec.table else {})}
        concurrency = self._context(spec.concurrency, BATCH_CONCURRENCY[spec.concurrency]) if spec.concurrency else None
        fn = Function(self, spec.id, handler=spec.handler, description=spec.description, environment=env,
                      layer=layer, timeout=Duration.seconds(spec.timeout), memory=spec.memory,
                      reserved_concurrency=concurrency, code=self.code[spec.static], runtime=self.runtime)
        if spec.table:
            self.storage.table.grant(fn.function, *spec.table)
            self.storage.key.grant_encrypt_decrypt(fn.function)
        if spec.codes:
            for k, v in self.codes.environment().items():
                fn.function.add_environment(k, v)
        for use, allow in (("seal", self.codes.allow_seal), ("lookup", self.codes.allow_lookup),
                           ("reveal", self.codes.allow_reveal)):
            if use in spec.codes:
                allow(fn.function)
        for k, v in spec.environment:
            fn.function.add_environment(k, v)
        for name in spec.layers:
            if name not in self.layers:
                self.layers[name] = layers.layer(self, name, self.runtime, self.node.try_get_context("bytecode_python"))
            fn.function.add_layers(self.layers[name])
        return fn

    def _workflows(self) -> dict[str, PayoutWorkflow | BatchWorkflow]:
        payout = {k: f.function for k, f in self._role("Payout").items()}
        batch = {k: f.function for k, f in self._role("Batch").items()}
        return {
            "Payout": PayoutWorkflow(self, "Payout", tasks=payout, key=self.storage.key),
            "Batch": BatchWorkflow(self, "Batch", tasks=batch, key=self.storage.key, bucket=self.files.bucket),
        }

    def _capabilities(self) -> None:
        """The queues and jobs their functions are part of."""
        key = self.storage.key
        reports = self._role("ReportJobs")
        self.reports = ReportJobs(self, "ReportJobs", key=key, worker=reports["worker"].function,
                                  bucket=self.files.bucket, requester=reports["requester"].function)
        webhooks = self._role("WebhookDeliveries")
        self.deliveries = WebhookDeliveries(self, "WebhookDeliveries", key=key, table=self.storage.table,
                                            fanout=webhooks["fanout"].function, sender=webhooks["sender"].function,
                                            requesters=[webhooks["requester"].function])
        self.accrual_queue = AccrualQueue(self, "AccrualQueue", key=key,
                                          consumer=self._role("AccrualQueue")["consumer"].function)
        self.progress = ProgressStream(self, "ProgressStream", key=key, table=self.storage.table,
                                       consumer=self._role("ProgressStream")["consumer"].function)

    def _wire(self, spec: FunctionSpec, fn: Function) -> None:
        """What a function reaches beyond the table: the workflows it starts or reads, the batch bucket, its
        schedule."""
        for name in spec.starts:
            machine = self.workflows[name].state_machine
            machine.grant_start_execution(fn.function)
            fn.function.add_environment(WORKFLOWS[name].environment, machine.state_machine_arn)
        for name in spec.describes:
            self._describe_executions(fn, self.workflows[name].state_machine)
        if spec.bucket:
            fn.function.add_environment("BATCH_BUCKET", self.files.bucket.bucket_name)
        if spec.bucket == "read-write":
            self._read_write_batch_files(fn)
        if spec.schedule:
            events.Rule(self, spec.schedule.rule, description=spec.schedule.description,
                        schedule=events.Schedule.rate(Duration.minutes(spec.schedule.minutes)),
                        targets=[targets.LambdaFunction(fn.function, retry_attempts=2)])
            fn.async_dead_letters(self.storage.key)

    def _describe_executions(self, fn: Function, machine) -> None:
        executions = self.format_arn(service="states", resource="execution",
                                     resource_name=f"{machine.state_machine_name}:*",
                                     arn_format=ArnFormat.COLON_RESOURCE_NAME)
        fn.function.add_to_role_policy(iam.PolicyStatement(actions=["states:DescribeExecution"],
                                                           resources=[executions]))
        acknowledge(fn.function,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                    f"execution:<{self.get_logical_id(machine.node.default_child)}.Name>:*]",
                    "DescribeExecution on the executions of one state machine: an execution ARN ends with "
                    "its name (an order id, a batch run), known only at run time.")

    def _read_write_batch_files(self, fn: Function) -> None:
        bucket = self.files.bucket
        bucket.grant_read_write(fn.function)  # items files, uploads, pre-signed PUT URLs
        bucket_lid = self.get_logical_id(bucket.node.default_child)
        acknowledge(fn.function, f"AwsSolutions-IAM5[Resource::<{bucket_lid}.Arn>/*]",
                    "Items files and uploads of any batch in the batch bucket.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            acknowledge(fn.function, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's read/write grant on the batch bucket.")

    def _api(self) -> PartnerApi:
        """The partner API, one method per route of ``treue.routes.ROUTES``; public routes without the authorizer."""
        api = PartnerApi(self, "PartnerApi", authorizer_fn=self._role("PartnerApi")["authorizer"].function,
                         program_rate_limit=self._context("program_rate_limit", 50),
                         program_burst_limit=self._context("program_burst_limit", 100),
                         sampling=self._trace_sampling())
        for route in ROUTES:
            api.route(route.method, route.path, self.functions[route.function].function, public=route.public)
        return api

    def _trace_sampling(self) -> tuple[float, int]:
        """(rate, reservoir) of the API stage's X-Ray sampling rule: TRACE_SAMPLING unless the context says."""
        rate, reservoir = (self.node.try_get_context(key) for key in TRACE_SAMPLING)
        return (TRACE_SAMPLING["xray_sampling_rate"] if rate is None else float(rate),
                TRACE_SAMPLING["xray_sampling_reservoir"] if reservoir is None else int(reservoir))

    def _alarms(self) -> None:
        alarm = self.monitoring.alarm
        for spec in FUNCTIONS:
            fn = self.functions[spec.id]
            alarm(f"{spec.id}Errors", fn.function.metric_errors(period=Duration.minutes(5)), 1,
                  spec.errors or f"{spec.id} function raised errors.")
            if spec.schedule:
                alarm(f"{spec.id}DlqDepth", fn.dead_letters.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5)), 1, spec.schedule.dead_letters)
        capabilities = {"AccrualQueue": self.accrual_queue, "WebhookDeliveries": self.deliveries,
                        "ReportJobs": self.reports, "ProgressStream": self.progress}
        for id, (capability, queue, minutes, description) in QUEUE_ALARMS.items():
            depth = getattr(capabilities[capability], queue).metric_approximate_number_of_messages_visible(
                period=Duration.minutes(minutes))
            alarm(id, depth, 1, description)
        for name, workflow in WORKFLOWS.items():
            self._workflow_alarms(name, workflow, self.workflows[name].state_machine)
        self._api_and_stream_alarms()

    def _workflow_alarms(self, name: str, workflow: WorkflowSpec, machine) -> None:
        five = Duration.minutes(5)
        self.monitoring.alarm(f"{name}ExecutionsFailed", machine.metric_failed(period=five), 1, workflow.failed)
        self.monitoring.alarm(
            f"{name}ExecutionsTimedOut", machine.metric_timed_out(period=five), 1,
            f"{name} executions timed out: {workflow.left_open}; list them by status TIMED_OUT and settle each.")
        self.monitoring.alarm(
            f"{name}ExecutionsAborted", machine.metric_aborted(period=five), 1,
            f"{name} executions were stopped (aborted): {workflow.left_open}; list them by status ABORTED and "
            "settle each.")

    def _api_and_stream_alarms(self) -> None:
        alarm = self.monitoring.alarm
        alarm("Api5xx", cw.Metric(namespace="AWS/ApiGateway", metric_name="5XXError",
                                  dimensions_map={"ApiName": "treue", "Stage": "prod"},
                                  statistic="Sum", period=Duration.minutes(5)),
              1, "The partner API answered 5XX.")
        # published by the sweeper (treue.handlers.sweeper) with Powertools: dimension service = "sweeper"
        alarm("StuckOrdersFound", self.functions["Sweeper"].metric("StuckOrdersFound", period=Duration.minutes(15)),
              1, "Orders or rewards were left open (PENDING never started, or their execution ended first); the "
                 "sweeper found and settled them: see its log (stuck records settled) for which and why.")
        fanout = self.functions["WebhookFanout"]
        alarm("WebhookFanoutFailures", fanout.metric("WebhookFanoutFailures"), 1,
              "The fan-out failed on stream records (reported for retry); see its log for the error and sequence "
              "number.")
        alarm("WebhookFanoutIteratorAge",
              fanout.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
              Duration.minutes(5).to_milliseconds(),
              "New events wait more than 5 minutes in the table stream before the fan-out queues their deliveries.")
        progress = self.functions["Progress"]
        alarm("ProgressFailures", progress.metric("ProgressFailures"), 1,
              "The Progress function failed on points.earned records (reported for retry); see its log for the "
              "error and sequence number.")
        alarm("ProgressIteratorAge",
              progress.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
              Duration.minutes(5).to_milliseconds(),
              "Purchases wait more than 5 minutes in the table stream before their referral and milestone payments.")

    def _outputs(self) -> None:
        payout, batch = self.workflows["Payout"].state_machine, self.workflows["Batch"].state_machine
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "UsagePlanId", value=self.api.usage_plan.usage_plan_id,
                  description="The API's usage plan: treue program create / enable-api (--stack) add each "
                              "program's key")
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "BatchStateMachineArn", value=batch.state_machine_arn)
        CfnOutput(self, "BatchBucketName", value=self.files.bucket.bucket_name)
        CfnOutput(self, "PayoutStateMachineArn", value=payout.state_machine_arn)
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(self, "AccrualQueueUrl", value=self.accrual_queue.queue.queue_url)
        CfnOutput(self, "AccrualDlqUrl", value=self.accrual_queue.dlq.queue_url)
        CfnOutput(self, "WebhookQueueUrl", value=self.deliveries.queue.queue_url)
        CfnOutput(self, "WebhookDlqUrl", value=self.deliveries.dlq.queue_url)
        CfnOutput(self, "ReportQueueUrl", value=self.reports.queue.queue_url)
        CfnOutput(self, "ReportDlqUrl", value=self.reports.dlq.queue_url)
