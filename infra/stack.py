"""The Treue stack: storage, the partner API and one function per capability."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from infra.components import AccrualQueue, Function, Monitoring, PartnerApi, Storage, powertools_layer

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
]


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
        docs = Function(self, "Docs", handler="treue.handlers.docs.handler", description="OpenAPI document",
                        environment={}, layer=layer, memory=128)

        storage.table.grant(authorizer.function, "dynamodb:GetItem")
        storage.table.grant(enrollment.function, "dynamodb:GetItem")
        storage.table.grant(accrual.function, "dynamodb:GetItem", "dynamodb:Query")
        storage.table.grant(accrual_queue.function, "dynamodb:GetItem")
        for writer in (enrollment, accrual, accrual_queue):
            storage.table.grant(writer.function, "dynamodb:TransactWriteItems", "dynamodb:PutItem",
                                "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
        for fn in (authorizer, enrollment, accrual, accrual_queue):
            storage.key.grant_encrypt_decrypt(fn.function)

        queue = AccrualQueue(self, "AccrualQueue", key=storage.key, consumer=accrual_queue.function)

        api = PartnerApi(self, "PartnerApi", authorizer_fn=authorizer.function)
        capability = {"Enrollment": enrollment.function, "Accrual": accrual.function}
        for method, path, name in ROUTES:
            api.route(method, path, capability[name])
        api.route("GET", "/v1/openapi.json", docs.function, public=True)

        monitoring = Monitoring(self, "Monitoring", key=storage.key)
        monitoring.alarm(
            "AccrualDlqDepth",
            queue.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
            1,
            "Accrual messages were dead-lettered; read their treue-error-reason attribute.",
        )
        for fn in (authorizer, enrollment, accrual, accrual_queue, docs):
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

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "AccrualQueueUrl", value=queue.queue.queue_url)
        CfnOutput(self, "AccrualDlqUrl", value=queue.dlq.queue_url)
