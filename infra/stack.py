"""The Treue stack: storage, the partner API and one function per capability."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aspects, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

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
    ReportJobs,
    Storage,
    WebhookDeliveries,
    acknowledge,
    powertools_layer,
)

# Every route of the partner API: (method, path, capability). The local twin reads the synthesized
# template, not this table, so a route missing from the stack is missing locally too.
ROUTES = [
    ("POST", "/v1/members", "Enrollment"),
    ("GET", "/v1/members", "Enrollment"),
    ("GET", "/v1/members/{member_id}", "Enrollment"),
    ("POST", "/v1/members/{member_id}/purchases", "Accrual"),
    ("POST", "/v1/members/{member_id}/adjustments", "Accrual"),
    ("GET", "/v1/members/{member_id}/balance", "Accrual"),
    ("GET", "/v1/members/{member_id}/ledger", "Accrual"),
    ("GET", "/v1/members/{member_id}/orders", "Orders"),
    ("GET", "/v1/catalog", "Catalog"),
    ("GET", "/v1/catalog/{item_id}", "Catalog"),
    ("POST", "/v1/orders", "Orders"),
    ("GET", "/v1/orders/{order_id}", "Orders"),
    ("POST", "/v1/orders/{order_id}/cancel", "Orders"),
    ("GET", "/v1/orders/{order_id}/codes", "Orders"),
    ("GET", "/v1/donations/totals", "Orders"),
    ("GET", "/v1/donations/{donation_id}", "Orders"),
    ("POST", "/v1/vouchers/validate", "Vouchers"),
    ("POST", "/v1/vouchers/redeem", "Vouchers"),
    ("POST", "/v1/vouchers/void", "Vouchers"),
    ("POST", "/v1/finance/fundings", "Finance"),
    ("GET", "/v1/finance/budget", "Finance"),
    ("PUT", "/v1/finance/budget/{currency}", "Finance"),
    ("GET", "/v1/finance/payouts", "Finance"),
    ("GET", "/v1/finance/journal", "Finance"),
    ("GET", "/v1/finance/trial-balance", "Finance"),
    ("GET", "/v1/finance/liability", "Finance"),
    ("GET", "/v1/finance/reconciliation", "Finance"),
    ("GET", "/v1/finance/kpis", "Finance"),
    ("GET", "/v1/finance/audit", "Finance"),
    ("POST", "/v1/finance/reports", "Finance"),
    ("GET", "/v1/finance/reports", "Finance"),
    ("GET", "/v1/finance/reports/{report_id}", "Finance"),
    ("POST", "/v1/rewards", "Rewards"),
    ("GET", "/v1/rewards/{reward_id}", "Rewards"),
    ("GET", "/v1/rewards/{reward_id}/codes", "Rewards"),
    ("POST", "/v1/batches", "Batches"),
    ("GET", "/v1/batches", "Batches"),
    ("POST", "/v1/batches/uploads", "Batches"),
    ("GET", "/v1/batches/{batch_id}", "Batches"),
    ("GET", "/v1/batches/{batch_id}/lines", "Batches"),
    ("POST", "/v1/batches/{batch_id}/retry", "Batches"),
    ("POST", "/v1/webhooks", "Webhooks"),
    ("GET", "/v1/webhooks", "Webhooks"),
    ("GET", "/v1/webhooks/{endpoint_id}", "Webhooks"),
    ("DELETE", "/v1/webhooks/{endpoint_id}", "Webhooks"),
    ("POST", "/v1/webhooks/{endpoint_id}/rotate-secret", "Webhooks"),
    ("GET", "/v1/events", "Webhooks"),
    ("GET", "/v1/events/{event_id}", "Webhooks"),
    ("POST", "/v1/events/{event_id}/redeliver", "Webhooks"),
    ("GET", "/v1/queue-senders", "QueueSenders"),
    ("GET", "/v1/queue-senders/{principal_id}", "QueueSenders"),
    ("PUT", "/v1/queue-senders/{principal_id}", "QueueSenders"),
    ("DELETE", "/v1/queue-senders/{principal_id}", "QueueSenders"),
]
# The Docs function's public GET routes: the OpenAPI document, the API reference page and its files
DOCS_ROUTES = ("/v1/openapi.json", "/docs", "/docs/{asset}")

# The payout workflow's task functions: ASL substitution name → (construct id, handler, description)
PAYOUT_TASKS = {
    "VerifyHoldFunction": ("PayoutVerifyHold", "verify_hold", "Payout: verify the member's hold"),
    "IssueVoucherFunction": ("PayoutIssueVoucher", "issue_voucher", "Payout: generate and seal voucher codes"),
    "IssueGiftCardFunction": ("PayoutIssueGiftCard", "issue_gift_card", "Payout: issue gift cards at the provider"),
    "RecordDonationFunction": ("PayoutRecordDonation", "record_donation", "Payout: record a donation"),
    "DeliverFunction": ("PayoutDeliver", "deliver", "Payout: mark delivered, write reward.delivered"),
    "CaptureFunction": ("PayoutCapture", "capture", "Payout: capture the held points"),
    "ReleaseHoldFunction": ("PayoutReleaseHold", "release", "Payout: undo and release the held points"),
}
# The batch workflow's task functions, likewise (infra/batch.asl.json)
BATCH_TASKS = {
    "BeginFunction": ("BatchBegin", "begin", "Batch: mark a run begun"),
    "IssueLineFunction": ("BatchIssueLine", "issue_line", "Batch: issue one line (its reward, start to finish)"),
    "FailLineFunction": ("BatchFailLine", "fail_line", "Batch: fail a line whose retries are used up"),
    "FinishFunction": ("BatchFinish", "finish", "Batch: count the lines, end the run, write batch.completed"),
}
# AWS authorizes each item of a TransactWriteItems as the item's own action (a grant of
# "dynamodb:TransactWriteItems" lets no item through): a function that writes in transactions needs these.
# Reserved concurrency of the batch functions (cdk.json context or -c key=value): the Batches API, the
# IssueLine task (a Distributed Map runs up to 20 lines at a time per batch run: 60 = three runs at full
# speed), and each of BeginRun/FailLine/FinishRun. 60 + 3 × 5 + 30 = 105 of the account's 1,000.
BATCH_CONCURRENCY = {"batches_api_concurrency": 30, "batch_line_concurrency": 60, "batch_step_concurrency": 5}
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")


class TreueStack(Stack):
    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        layer_version = int(self.node.try_get_context("powertools_layer_version") or 27)
        layer = powertools_layer(self, layer_version)
        storage = Storage(self, "Storage")
        env = {"TABLE_NAME": storage.table.table_name}

        def function(name: str, handler: str, description: str, **kw) -> Function:
            return Function(self, name, handler=handler, description=description, environment=env, layer=layer, **kw)

        authorizer = function("Authorizer", "treue.handlers.authorizer.handler", "API key authorizer", memory=256)
        enrollment = function("Enrollment", "treue.handlers.enrollment.handler", "Member enrollment and lookup")
        accrual = function("Accrual", "treue.handlers.accrual.handler", "Purchases, adjustments, balances, statements")
        accrual_queue = function(
            "AccrualQueueConsumer", "treue.handlers.accrual_queue.handler", "Accrual from the POS/shop queue",
            timeout=Duration.seconds(30),
        )
        codes = CodeKeys(self, "CodeKeys")
        catalog_fn = function("Catalog", "treue.handlers.catalog.handler", "Catalog priced in program points")
        orders = function("Orders", "treue.handlers.orders.handler", "Orders, code reveal, donation receipts",
                          timeout=Duration.seconds(15))
        vouchers = function("Vouchers", "treue.handlers.vouchers.handler", "Voucher validate/redeem/void at the till")
        finance = function("Finance", "treue.handlers.finance.handler",
                           "Budget, fundings, payouts, journal, trial balance, reconciliation, KPIs, audit",
                           timeout=Duration.seconds(29), memory=1024)
        sealer = function("AuditSealer", "treue.handlers.audit.handler", "Chains new audit records per program",
                          timeout=Duration.seconds(60), memory=512)
        rewards = function("Rewards", "treue.handlers.rewards.handler", "Budget-paid gift cards and vouchers",
                           timeout=Duration.seconds(15))
        queue_senders_fn = function("QueueSenders", "treue.handlers.queue_senders.handler",
                                    "IAM principals whose accrual queue messages count for a program")
        webhooks_fn = function("Webhooks", "treue.handlers.webhooks.handler", "Webhook endpoints and the event log",
                               timeout=Duration.seconds(15))
        fanout = function("WebhookFanout", "treue.handlers.webhook_fanout.handler",
                          "New events from the table stream to one delivery per subscribed endpoint",
                          timeout=Duration.seconds(60))
        sender = function("WebhookSender", "treue.handlers.webhook_sender.handler",
                          "Signed webhook deliveries with backoff", timeout=Duration.seconds(60))
        tasks = {
            name: function(cid, f"treue.handlers.payout.{handler}", description, timeout=Duration.seconds(30))
            for name, (cid, handler, description) in PAYOUT_TASKS.items()
        }
        # One tenant's batches cannot take the account's Lambda concurrency (1,000 by default) from every
        # other function: the batch functions have reserved concurrency (context, see BATCH_CONCURRENCY);
        # a line throttled by it is retried by the workflow (Lambda.TooManyRequestsException).
        concurrency = {k: int(self.node.try_get_context(k) or v) for k, v in BATCH_CONCURRENCY.items()}
        batches_fn = function("Batches", "treue.handlers.batches.handler",
                              "Bulk issuance: validate, pay for and start batches; lines, retries, uploads",
                              timeout=Duration.seconds(29), memory=1024,
                              reserved_concurrency=concurrency["batches_api_concurrency"])
        batch_tasks = {
            name: function(cid, f"treue.handlers.batch_tasks.{handler}", description, timeout=Duration.seconds(60),
                           reserved_concurrency=concurrency["batch_line_concurrency" if name == "IssueLineFunction"
                                                            else "batch_step_concurrency"])
            for name, (cid, handler, description) in BATCH_TASKS.items()
        }
        for fn in (orders, vouchers, rewards, webhooks_fn, sender, *tasks.values(), *batch_tasks.values()):
            for k, v in codes.environment().items():
                fn.function.add_environment(k, v)
        docs = Function(self, "Docs", handler="treue.handlers.docs.handler",
                        description="OpenAPI document and the API reference page (/docs)",
                        environment={}, layer=layer, memory=128, static=True)

        storage.table.grant(authorizer.function, "dynamodb:GetItem")
        storage.table.grant(enrollment.function, "dynamodb:GetItem")
        storage.table.grant(accrual.function, "dynamodb:GetItem", "dynamodb:Query")
        storage.table.grant(accrual_queue.function, "dynamodb:GetItem")
        for writer in (enrollment, accrual, accrual_queue):
            storage.table.grant(writer.function, *TABLE_WRITE)
        storage.table.grant(catalog_fn.function, "dynamodb:GetItem", "dynamodb:Query")
        storage.table.grant(orders.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            *TABLE_WRITE)
        storage.table.grant(vouchers.function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        for task in tasks.values():
            storage.table.grant(task.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                                *TABLE_WRITE)
        storage.table.grant(batches_fn.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            "dynamodb:BatchWriteItem", *TABLE_WRITE)
        for task in batch_tasks.values():
            storage.table.grant(task.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                                *TABLE_WRITE)
        # fundings and thresholds are transactions of Put (movement, guard) and Update (balance) items
        storage.table.grant(finance.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            *TABLE_WRITE)
        storage.table.grant(rewards.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            *TABLE_WRITE)  # BatchGetItem: the budget check reads balance and settings at once
        # one transaction puts (or deletes) the principal's binding, the program's list entry and the audit record
        storage.table.grant(queue_senders_fn.function, "dynamodb:GetItem", "dynamodb:Query",
                            "dynamodb:PutItem", "dynamodb:DeleteItem")
        # register, rotate and delete are transactions of Put/Update/Delete items
        storage.table.grant(webhooks_fn.function, "dynamodb:GetItem", "dynamodb:Query", *TABLE_WRITE,
                            "dynamodb:DeleteItem")
        storage.table.grant(fanout.function, "dynamodb:Query")
        storage.table.grant(sender.function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        storage.table.grant(sealer.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            *TABLE_WRITE)
        acknowledge(self, "AwsSolutions-IAM5[Resource::<StorageTableB43FDCE7.Arn>/index/*]",
                    "CDK's table grants include the table's one index (gsi1: journal, orders, balances, audit "
                    "chain); the actions stay the per-function lists above.")
        for fn in (authorizer, enrollment, accrual, accrual_queue, queue_senders_fn, catalog_fn, orders, vouchers,
                   *tasks.values(),
                   finance, sealer, rewards, webhooks_fn, fanout, sender, batches_fn, *batch_tasks.values()):
            storage.key.grant_encrypt_decrypt(fn.function)
        codes.allow_seal(tasks["IssueVoucherFunction"].function)
        codes.allow_seal(tasks["IssueGiftCardFunction"].function)
        codes.allow_lookup(tasks["IssueVoucherFunction"].function)
        codes.allow_lookup(vouchers.function)
        codes.allow_seal(batch_tasks["IssueLineFunction"].function)
        codes.allow_lookup(batch_tasks["IssueLineFunction"].function)
        codes.allow_reveal(orders.function)
        codes.allow_reveal(rewards.function)
        codes.allow_seal(webhooks_fn.function)  # webhook secrets are sealed like codes
        codes.allow_reveal(sender.function)

        payout = PayoutWorkflow(self, "Payout", tasks={k: t.function for k, t in tasks.items()}, key=storage.key)
        for starter in (orders, rewards):
            payout.state_machine.grant_start_execution(starter.function)
            starter.function.add_environment("PAYOUT_STATE_MACHINE_ARN", payout.state_machine.state_machine_arn)

        files = BatchFiles(self, "BatchFiles", key=storage.key)
        batch = BatchWorkflow(self, "Batch", tasks={k: t.function for k, t in batch_tasks.items()}, key=storage.key,
                              bucket=files.bucket)
        files.bucket.grant_read_write(batches_fn.function)  # items files, uploads, pre-signed PUT URLs
        batch.state_machine.grant_start_execution(batches_fn.function)
        batches_fn.function.add_environment("BATCH_BUCKET", files.bucket.bucket_name)
        batches_fn.function.add_environment("BATCH_STATE_MACHINE_ARN", batch.state_machine.state_machine_arn)

        # Finance report jobs (POST /v1/finance/reports): the worker pages through the program's listings with
        # its time budget, checkpoints on the report item and continues through the report queue
        report_worker = function("ReportWorker", "treue.handlers.report_worker.handler",
                                 "Finance report jobs: reconciliation, KPIs, payouts, journal of any size",
                                 timeout=Duration.minutes(5), memory=1024)
        reports = ReportJobs(self, "ReportJobs", key=storage.key, worker=report_worker.function, bucket=files.bucket,
                             requester=finance.function)
        # reads: the report, the provider's records, donations, the program (GetItem); listings, accounts,
        # budgets (Query, gsi1); checkpoints (UpdateItem)
        storage.table.grant(report_worker.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")
        storage.table.grant(finance.function, "dynamodb:PutItem")  # a report and its idempotency guard
        storage.key.grant_encrypt_decrypt(report_worker.function)
        acknowledge(batches_fn.function,
                    f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(files.bucket.node.default_child)}.Arn>/*]",
                    "Items files and uploads of any batch in the batch bucket.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            acknowledge(batches_fn.function, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's read/write grant on the batch bucket.")

        deliveries = WebhookDeliveries(self, "WebhookDeliveries", key=storage.key, table=storage.table,
                                       fanout=fanout.function, sender=sender.function)
        deliveries.queue.grant_send_messages(webhooks_fn.function)
        webhooks_fn.function.add_environment("WEBHOOK_QUEUE_URL", deliveries.queue.queue_url)
        # endpoints on 127.0.0.1 only on the twin (which sets it to "true"): checked at registration
        # and again by the sender at every delivery
        for checks_urls in (webhooks_fn.function, sender.function):
            checks_urls.add_environment("ALLOW_LOCAL_WEBHOOKS", "false")

        queue = AccrualQueue(self, "AccrualQueue", key=storage.key, consumer=accrual_queue.function)

        api = PartnerApi(self, "PartnerApi", authorizer_fn=authorizer.function,
                         program_rate_limit=int(self.node.try_get_context("program_rate_limit") or 50),
                         program_burst_limit=int(self.node.try_get_context("program_burst_limit") or 100))
        capability = {"Enrollment": enrollment.function, "Accrual": accrual.function,
                      "Catalog": catalog_fn.function, "Orders": orders.function, "Vouchers": vouchers.function,
                      "Finance": finance.function, "Rewards": rewards.function, "Webhooks": webhooks_fn.function,
                      "Batches": batches_fn.function, "QueueSenders": queue_senders_fn.function}
        for method, path, name in ROUTES:
            api.route(method, path, capability[name])
        for path in DOCS_ROUTES:  # the OpenAPI document and the API reference page: no key
            api.route("GET", path, docs.function, public=True)

        # The audit sealer chains the records every transaction appends (treue.store.audit)
        events.Rule(self, "AuditSealSchedule", description="Seal new audit records into each program's chain",
                    schedule=events.Schedule.rate(Duration.minutes(1)),
                    targets=[targets.LambdaFunction(sealer.function, retry_attempts=2)])
        sealer_dlq = sealer.async_dead_letters(storage.key)
        # checkov findings on functions that depend on the finished stack (reserved concurrency, DLQs)
        Aspects.of(self).add(CheckovFunctionFindings())

        monitoring = Monitoring(self, "Monitoring")
        monitoring.alarm(
            "AccrualDlqDepth",
            queue.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
            1,
            "Accrual messages were dead-lettered; read their treue-error-reason attribute.",
        )
        monitoring.alarm(
            "WebhookDlqDepth",
            deliveries.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            1,
            "Webhook deliveries gave up after more than 24 hours; the events stay in GET /v1/events.",
        )
        for fn in (authorizer, enrollment, accrual, accrual_queue, queue_senders_fn, catalog_fn, orders, vouchers,
                   *tasks.values(), docs,
                   finance, sealer, rewards, webhooks_fn, fanout, sender, batches_fn, *batch_tasks.values()):
            monitoring.alarm(
                f"{fn.node.id}Errors",
                fn.function.metric_errors(period=Duration.minutes(5)),
                1,
                f"{fn.node.id} function raised errors.",
            )
        monitoring.alarm(
            "Api5xx",
            cw.Metric(namespace="AWS/ApiGateway", metric_name="5XXError",
                      dimensions_map={"ApiName": "treue", "Stage": "prod"},
                      statistic="Sum", period=Duration.minutes(5)),
            1,
            "The partner API answered 5XX.",
        )

        monitoring.alarm(
            "PayoutExecutionsFailed",
            payout.state_machine.metric_failed(period=Duration.minutes(5)),
            1,
            "Payout executions failed: orders ended FAILED (points released) or a capture needs a redrive.",
        )

        monitoring.alarm(
            "BatchExecutionsFailed",
            batch.state_machine.metric_failed(period=Duration.minutes(5)),
            1,
            "A batch run failed outside its lines (BeginRun or FinishRun); GET the batch and retry it.",
        )

        # The sweeper settles what a dead function or workflow left open (treue.logic.sweeper): orders and
        # rewards never started or whose execution ended first, batch runs likewise; found through the
        # watch list on gsi1 (treue.store.watchlist), whose markers leave in each record's final transaction
        sweeper = function("Sweeper", "treue.handlers.sweeper.handler",
                           "Starts or settles orders, rewards and batch runs left open by a dead function or workflow",
                           timeout=Duration.minutes(2))
        storage.table.grant(sweeper.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            "dynamodb:DeleteItem", *TABLE_WRITE)
        storage.key.grant_encrypt_decrypt(sweeper.function)
        for final_step in (tasks["CaptureFunction"], tasks["ReleaseHoldFunction"], batch_tasks["IssueLineFunction"],
                           batch_tasks["FailLineFunction"], batch_tasks["FinishFunction"], batches_fn):
            # a record's final transaction deletes its watch-list marker
            storage.table.grant(final_step.function, "dynamodb:DeleteItem")
        sweeper.function.add_environment("PAYOUT_STATE_MACHINE_ARN", payout.state_machine.state_machine_arn)
        sweeper.function.add_environment("BATCH_STATE_MACHINE_ARN", batch.state_machine.state_machine_arn)
        sweeper.function.add_environment("BATCH_BUCKET", files.bucket.bucket_name)
        payout.state_machine.grant_start_execution(sweeper.function)
        batch.state_machine.grant_start_execution(sweeper.function)
        for machine, readers in ((payout.state_machine, (sweeper,)),
                                 (batch.state_machine, (sweeper, batches_fn))):  # a retry reads its last run
            executions = self.format_arn(service="states", resource="execution",
                                         resource_name=f"{machine.state_machine_name}:*",
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME)
            for reader in readers:
                reader.function.add_to_role_policy(iam.PolicyStatement(actions=["states:DescribeExecution"],
                                                                       resources=[executions]))
                acknowledge(reader.function,
                            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                            f"execution:<{self.get_logical_id(machine.node.default_child)}.Name>:*]",
                            "DescribeExecution on the executions of one state machine: an execution ARN ends with "
                            "its name (an order id, a batch run), known only at run time.")
        events.Rule(self, "SweeperSchedule", description="Start or settle orders and batch runs left open",
                    schedule=events.Schedule.rate(Duration.minutes(5)),
                    targets=[targets.LambdaFunction(sweeper.function, retry_attempts=2)])
        monitoring.alarm("SweeperDlqDepth",
                         sweeper.async_dead_letters(storage.key).metric_approximate_number_of_messages_visible(
                             period=Duration.minutes(5)), 1,
                         "Scheduled sweeper runs failed after Lambda's retries; the next run sweeps again.")
        monitoring.alarm("SweeperErrors", sweeper.function.metric_errors(period=Duration.minutes(5)), 1,
                         "Sweeper function raised errors: stuck orders or batch runs may stay open.")
        for name, machine, what in (("Payout", payout.state_machine, "their orders stopped short of COMPLETED or "
                                     "FAILED, points still held"),
                                    ("Batch", batch.state_machine, "their runs did not reach FinishRun, the unused "
                                     "cost still held")):
            monitoring.alarm(
                f"{name}ExecutionsTimedOut",
                machine.metric_timed_out(period=Duration.minutes(5)),
                1,
                f"{name} executions timed out: {what}; list them by status TIMED_OUT and settle each.",
            )
            monitoring.alarm(
                f"{name}ExecutionsAborted",
                machine.metric_aborted(period=Duration.minutes(5)),
                1,
                f"{name} executions were stopped (aborted): {what}; list them by status ABORTED and settle each.",
            )
        monitoring.alarm(
            "StuckOrdersFound",
            # published by the sweeper (treue.handlers.sweeper) with Powertools: dimension service = "sweeper"
            cw.Metric(namespace="Treue", metric_name="StuckOrdersFound", dimensions_map={"service": "sweeper"},
                      statistic="Sum", period=Duration.minutes(15)),
            1,
            "Orders or rewards were left open (PENDING never started, or their execution ended first); the sweeper "
            "found and settled them: see its log (stuck records settled) for which and why.",
        )
        monitoring.alarm(
            "AuditSealerDlqDepth",
            sealer_dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            1,
            "Scheduled audit sealer runs failed after Lambda's retries; the next run seals what they left.",
        )
        monitoring.alarm(
            "WebhookStreamFailuresDepth",
            deliveries.stream_failures.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            1,
            "The fan-out gave up on table stream records: their events were not queued for delivery; each message "
            "names the shard and sequence numbers; redeliver the events with POST /v1/events/{id}/redeliver.",
        )
        monitoring.alarm(
            "WebhookFanoutFailures",
            fanout.metric("WebhookFanoutFailures"),
            1,
            "The fan-out failed on stream records (reported for retry); see its log for the error and sequence number.",
        )
        monitoring.alarm(
            "WebhookFanoutIteratorAge",
            fanout.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
            Duration.minutes(5).to_milliseconds(),
            "New events wait more than 5 minutes in the table stream before the fan-out queues their deliveries.",
        )

        monitoring.alarm(
            "ReportDlqDepth",
            reports.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            1,
            "Report job steps were dead-lettered; their reports were marked failed (GET /v1/finance/reports).",
        )
        monitoring.alarm(
            "ReportWorkerErrors",
            report_worker.function.metric_errors(period=Duration.minutes(5)),
            1,
            "ReportWorker function raised errors.",
        )

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "UsagePlanId", value=api.usage_plan.usage_plan_id,
                  description="The API's usage plan: treue program create / enable-api (--stack) add each "
                              "program's key")
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn)
        CfnOutput(self, "BatchStateMachineArn", value=batch.state_machine.state_machine_arn)
        CfnOutput(self, "BatchBucketName", value=files.bucket.bucket_name)
        CfnOutput(self, "PayoutStateMachineArn", value=payout.state_machine.state_machine_arn)
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "AccrualQueueUrl", value=queue.queue.queue_url)
        CfnOutput(self, "AccrualDlqUrl", value=queue.dlq.queue_url)
        CfnOutput(self, "WebhookQueueUrl", value=deliveries.queue.queue_url)
        CfnOutput(self, "WebhookDlqUrl", value=deliveries.dlq.queue_url)
        CfnOutput(self, "ReportQueueUrl", value=reports.queue.queue_url)
        CfnOutput(self, "ReportDlqUrl", value=reports.dlq.queue_url)
