"""The Treue stack: storage, the partner API and one function per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.components import (
    AccrualQueue,
    CodeKeys,
    Function,
    Monitoring,
    PartnerApi,
    PayoutWorkflow,
    Storage,
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
]

# The payout workflow's task functions: ASL substitution name → (construct id, handler, description)
PAYOUT_TASKS = {
    "VerifyHoldFunction": ("PayoutVerifyHold", "verify_hold", "Payout: verify the member's hold"),
    "IssueVoucherFunction": ("PayoutIssueVoucher", "issue_voucher", "Payout: generate and seal voucher codes"),
    "IssueGiftCardFunction": ("PayoutIssueGiftCard", "issue_gift_card", "Payout: issue gift cards at the provider"),
    "RecordDonationFunction": ("PayoutRecordDonation", "record_donation", "Payout: record a donation"),
    "DeliverFunction": ("PayoutDeliver", "deliver", "Payout: write the delivery outbox event"),
    "CaptureFunction": ("PayoutCapture", "capture", "Payout: capture the held points"),
    "ReleaseHoldFunction": ("PayoutReleaseHold", "release", "Payout: undo and release the held points"),
}
TABLE_WRITE = ("dynamodb:TransactWriteItems", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")


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
        tasks = {
            name: function(cid, f"treue.handlers.payout.{handler}", description, timeout=Duration.seconds(30))
            for name, (cid, handler, description) in PAYOUT_TASKS.items()
        }
        for fn in (orders, vouchers, *tasks.values()):
            for k, v in codes.environment().items():
                fn.function.add_environment(k, v)
        docs = Function(self, "Docs", handler="treue.handlers.docs.handler", description="OpenAPI document",
                        environment={}, layer=layer, memory=128)

        storage.table.grant(authorizer.function, "dynamodb:GetItem")
        storage.table.grant(enrollment.function, "dynamodb:GetItem")
        storage.table.grant(accrual.function, "dynamodb:GetItem", "dynamodb:Query")
        storage.table.grant(accrual_queue.function, "dynamodb:GetItem")
        for writer in (enrollment, accrual, accrual_queue):
            storage.table.grant(writer.function, "dynamodb:TransactWriteItems", "dynamodb:PutItem",
                                "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
        storage.table.grant(catalog_fn.function, "dynamodb:GetItem", "dynamodb:Query")
        storage.table.grant(orders.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            *TABLE_WRITE)
        storage.table.grant(vouchers.function, "dynamodb:GetItem", "dynamodb:UpdateItem")
        for task in tasks.values():
            storage.table.grant(task.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                                *TABLE_WRITE)
        storage.table.grant(finance.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            "dynamodb:TransactWriteItems", "dynamodb:ConditionCheckItem")
        storage.table.grant(sealer.function, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem",
                            "dynamodb:TransactWriteItems", "dynamodb:UpdateItem")
        acknowledge(self, "AwsSolutions-IAM5[Resource::<StorageTableB43FDCE7.Arn>/index/*]",
                    "CDK's table grants include the table's one index (gsi1: journal, orders, balances, audit "
                    "chain); the actions stay the per-function lists above.")
        for fn in (authorizer, enrollment, accrual, accrual_queue, catalog_fn, orders, vouchers, *tasks.values(),
                   finance, sealer):
            storage.key.grant_encrypt_decrypt(fn.function)
        codes.allow_seal(tasks["IssueVoucherFunction"].function)
        codes.allow_seal(tasks["IssueGiftCardFunction"].function)
        codes.allow_lookup(tasks["IssueVoucherFunction"].function)
        codes.allow_lookup(vouchers.function)
        codes.allow_reveal(orders.function)

        payout = PayoutWorkflow(self, "Payout", tasks={k: t.function for k, t in tasks.items()}, key=storage.key)
        payout.state_machine.grant_start_execution(orders.function)
        orders.function.add_environment("PAYOUT_STATE_MACHINE_ARN", payout.state_machine.state_machine_arn)

        queue = AccrualQueue(self, "AccrualQueue", key=storage.key, consumer=accrual_queue.function)

        api = PartnerApi(self, "PartnerApi", authorizer_fn=authorizer.function)
        capability = {"Enrollment": enrollment.function, "Accrual": accrual.function,
                      "Catalog": catalog_fn.function, "Orders": orders.function, "Vouchers": vouchers.function,
                      "Finance": finance.function}
        for method, path, name in ROUTES:
            api.route(method, path, capability[name])
        api.route("GET", "/v1/openapi.json", docs.function, public=True)

        # The audit sealer chains the records every transaction appends (treue.store.audit)
        events.Rule(self, "AuditSealSchedule", description="Seal new audit records into each program's chain",
                    schedule=events.Schedule.rate(Duration.minutes(1)),
                    targets=[targets.LambdaFunction(sealer.function, retry_attempts=2)])

        monitoring = Monitoring(self, "Monitoring", key=storage.key)
        monitoring.alarm(
            "AccrualDlqDepth",
            queue.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
            1,
            "Accrual messages were dead-lettered; read their treue-error-reason attribute.",
        )
        for fn in (authorizer, enrollment, accrual, accrual_queue, catalog_fn, orders, vouchers, *tasks.values(), docs,
                   finance, sealer):
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

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "PayoutStateMachineArn", value=payout.state_machine.state_machine_arn)
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "AccrualQueueUrl", value=queue.queue.queue_url)
        CfnOutput(self, "AccrualDlqUrl", value=queue.dlq.queue_url)
