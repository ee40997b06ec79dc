"""One construct per capability; the stack (infra/stack.py) composes them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsii
from aws_cdk import Acknowledgment, ArnFormat, CfnResource, Duration, IAspect, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_xray as xray
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
if str(FUNCTIONS_DIR) not in sys.path:  # the table's schema is the functions' own (treue.store.schema)
    sys.path.insert(0, str(FUNCTIONS_DIR))

from treue.routes import BINARY_MEDIA_TYPES  # noqa: E402
from treue.store import schema  # noqa: E402

# Files of the API reference page (/docs) that make copies from web/node_modules (not committed)
STATIC = "treue/static"
DOCS_UI = FUNCTIONS_DIR / STATIC / "swagger-ui-bundle.js"
# Official Powertools for AWS Lambda (Python) v3 layer of the runtime's Python: Powertools, pydantic v2
POWERTOOLS_LAYER = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-x86_64:{version}"
PROBLEM = "https://treue.dev/problems/"


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag finding on ``scope`` and its children, always with a written reason."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def checkov_skip(resource: CfnResource, check: str, reason: str) -> None:
    """Acknowledge a checkov finding on one CloudFormation resource (its ``Metadata.checkov.skip``), with a
    written reason; tests/infra/test_checkov.py fails on any finding that is neither fixed nor skipped."""
    skips = [s for s in ((resource.get_metadata("checkov") or {}).get("skip") or []) if s["id"] != check]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check, "comment": reason}]})


class LogsKey(Construct):
    """The KMS key of every log group of the stack (functions, workflows, API access logs).

    CloudWatch Logs of this region may use it for this account's log groups only (the key policy's
    condition on the encryption context CloudWatch Logs sends: the log group's ARN)."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(self, "Key", description="Treue logs: function, workflow and API access log groups",
                           enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN)
        log_groups = stack.format_arn(service="logs", resource="log-group", resource_name="*",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        ))


def logs_key(scope: Construct) -> kms.IKey:
    """The stack's one LogsKey, made at its first use."""
    stack = Stack.of(scope)
    found = stack.node.try_find_child("LogsKey")
    return (found if isinstance(found, LogsKey) else LogsKey(stack, "LogsKey")).key


def log_group(scope: Construct, id: str, retention: logs.RetentionDays) -> logs.LogGroup:
    """A log group encrypted with the stack's LogsKey."""
    return logs.LogGroup(scope, id, retention=retention, encryption_key=logs_key(scope),
                         removal_policy=RemovalPolicy.DESTROY)


# Principals that invoke a function asynchronously through a resource policy (lambda:InvokeFunction).
ASYNC_INVOKERS = ("events.amazonaws.com", "sns.amazonaws.com", "s3.amazonaws.com")


@jsii.implements(IAspect)
class CheckovFunctionFindings:
    """Skips two checkov findings on functions only where they do not apply, decided on the finished stack.

    CKV_AWS_115 (reserved concurrency): skipped for the functions without a reserved concurrency (issue 13,
    item 8 sets it where a limit protects the table or a provider). CKV_AWS_116 (dead-letter queue):
    skipped for functions that nothing invokes asynchronously; a function that an EventBridge rule, SNS or
    S3 invokes keeps the finding until it gets ``Function.async_dead_letters``."""

    def visit(self, node) -> None:
        if not isinstance(node, lambda_.CfnFunction):
            return
        if node.reserved_concurrent_executions is None:
            checkov_skip(node, "CKV_AWS_115",
                         "No reserved concurrency: this function shares the account's pool; reserved concurrency "
                         "is set (issue 13, item 8) only where a limit protects the table or a provider.")
        if node.dead_letter_config is None and not self._invoked_asynchronously(node):
            checkov_skip(node, "CKV_AWS_116",
                         "Invoked synchronously only (API Gateway, SQS/stream event source mappings, Step Functions "
                         "tasks): the caller sees each failure and retries or dead-letters it; a Lambda DLQ only "
                         "receives failed asynchronous invocations.")

    @staticmethod
    def _invoked_asynchronously(fn: lambda_.CfnFunction) -> bool:
        stack = Stack.of(fn)
        target = stack.get_logical_id(fn)
        for node in stack.node.find_all():
            if isinstance(node, lambda_.CfnPermission) and stack.resolve(node.principal) in ASYNC_INVOKERS:
                if target in json.dumps(stack.resolve(node.function_name)):
                    return True
        return False


def table_keys(key_schema: list[dict[str, str]]) -> dict[str, ddb.Attribute]:
    """``partition_key`` and ``sort_key`` of a key schema in ``treue.store.schema.TABLE``, typed as its
    attribute definitions say: the construct is built from the schema the stores and tests use."""
    types = {a["AttributeName"]: a["AttributeType"] for a in schema.TABLE["AttributeDefinitions"]}
    kinds = {"S": ddb.AttributeType.STRING, "N": ddb.AttributeType.NUMBER, "B": ddb.AttributeType.BINARY}
    roles = {"HASH": "partition_key", "RANGE": "sort_key"}
    return {roles[k["KeyType"]]: ddb.Attribute(name=k["AttributeName"], type=kinds[types[k["AttributeName"]]])
            for k in key_schema}


class Storage(Construct):
    """The single table, encrypted with the program data key; PITR and deletion protection on."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "DataKey",
            description="Treue data at rest (DynamoDB, SQS, SNS)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table = ddb.Table(
            self,
            "Table",
            **table_keys(schema.TABLE["KeySchema"]),
            billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
            encryption=ddb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
            stream=ddb.StreamViewType.NEW_IMAGE,  # new events → webhook fan-out
        )
        # Program-wide reads: journal and orders by time, member balances, the audit trail (see store/)
        for index in schema.TABLE["GlobalSecondaryIndexes"]:
            self.table.add_global_secondary_index(
                index_name=index["IndexName"],
                **table_keys(index["KeySchema"]),
                projection_type=getattr(ddb.ProjectionType, index["Projection"]["ProjectionType"]),
            )


class CodeKeys(Construct):
    """Reward codes at rest: a KMS key to seal them and an HMAC key to find them; neither leaves KMS."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.sealing = kms.Key(
            self, "SealingKey", description="Treue reward codes (vouchers, gift cards): encryption",
            enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
        )
        self.lookup = kms.Key(
            self, "LookupKey", description="Treue voucher codes: keyed hash for lookup at the till",
            key_spec=kms.KeySpec.HMAC_256, key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=RemovalPolicy.RETAIN,
        )
        checkov_skip(self.lookup.node.default_child, "CKV_AWS_7",
                     "KMS cannot rotate HMAC keys automatically, and a rotated lookup key would no longer find the "
                     "vouchers already issued (their stored lookup hashes were made with this key).")

    def environment(self) -> dict[str, str]:
        return {"CODES_KEY_ID": self.sealing.key_arn, "CODES_MAC_KEY_ID": self.lookup.key_arn}

    def allow_seal(self, fn: lambda_.Function) -> None:
        self.sealing.grant(fn, "kms:Encrypt")

    def allow_reveal(self, fn: lambda_.Function) -> None:
        self.sealing.grant(fn, "kms:Decrypt")

    def allow_lookup(self, fn: lambda_.Function) -> None:
        self.lookup.grant(fn, "kms:GenerateMac")


ASL_FILE = ROOT / "infra" / "payout.asl.json"


class PayoutWorkflow(Construct):
    """The Standard payout state machine from infra/payout.asl.json; one Lambda task per step.

    ``tasks`` maps the ASL's substitution names (``VerifyHoldFunction`` …) to functions.
    """

    def __init__(self, scope: Construct, id: str, *, tasks: dict[str, lambda_.Function], key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.log_group = log_group(self, "Logs", logs.RetentionDays.THREE_MONTHS)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_file(str(ASL_FILE)),
            definition_substitutions={name: fn.function_arn for name, fn in tasks.items()},
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            timeout=Duration.hours(1),
        )
        for fn in tasks.values():
            fn.grant_invoke(self.state_machine.role)
        acknowledge(self.state_machine, "AwsSolutions-IAM5[Resource::*]",
                    "Log delivery and X-Ray actions of Step Functions have no resource-level permissions.")
        for name, fn in tasks.items():
            acknowledge(self.state_machine,
                        f"AwsSolutions-IAM5[Resource::<{Stack.of(self).get_logical_id(fn.node.default_child)}.Arn>:*]",
                        f"Invoking {name} by any version or alias of that one function.")


BATCH_ASL_FILE = ROOT / "infra" / "batch.asl.json"


class BatchFiles(Construct):
    """The batch bucket: each run's items file (read by the Distributed Map) and CSV uploads (PUT to
    pre-signed URLs). Private, KMS-encrypted, TLS only; files expire after 90 days."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            # an overwritten or deleted items file or upload can be restored for 7 days
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90),
                                              noncurrent_version_expiration=Duration.days(7),
                                              abort_incomplete_multipart_upload_after=Duration.days(1)),
                             # finance report results and job state (treue.store.report_jobs), like the report items
                             s3.LifecycleRule(prefix="reports/", expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        checkov_skip(self.bucket.node.default_child, "CKV_AWS_18",
                     "Holds batch items files and uploads only; every write comes from the batch functions or a "
                     "pre-signed URL they issued, and the batch lines in DynamoDB carry the audit trail.")
        acknowledge(self.bucket, "AwsSolutions-S1",
                    "Holds batch items files and uploads only; every write comes from the batch functions or a "
                    "pre-signed URL they issued, and the batch lines in DynamoDB carry the audit trail.")


class BatchWorkflow(Construct):
    """The Standard batch state machine from infra/batch.asl.json: BeginRun, a Distributed Map reading
    the run's items file from the batch bucket (one child execution per line), FinishRun."""

    def __init__(self, scope: Construct, id: str, *, tasks: dict[str, lambda_.Function], key: kms.IKey,
                 bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.log_group = log_group(self, "Logs", logs.RetentionDays.THREE_MONTHS)
        # A Distributed Map starts child executions of its own state machine: its role names the machine
        # by a name fixed here (an ARN attribute of the machine itself would be a circular reference).
        name = f"{stack.stack_name}-Batches"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_file(str(BATCH_ASL_FILE)),
            definition_substitutions={name_: fn.function_arn for name_, fn in tasks.items()},
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            # every event, without execution data (the lines carry recipients' addresses)
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            timeout=Duration.hours(24),
        )
        for fn in tasks.values():
            fn.grant_invoke(self.state_machine.role)
        self._run_children(name)
        bucket.grant_read(self.state_machine.role)
        self._acknowledge(name, tasks, bucket)

    def _run_children(self, name: str) -> None:
        """The Distributed Map's child executions and map runs: start, read, stop, update."""
        stack = Stack.of(self)
        machine_arn = stack.format_arn(service="states", resource="stateMachine", resource_name=name,
                                       arn_format=ArnFormat.COLON_RESOURCE_NAME)
        executions = stack.format_arn(service="states", resource="execution", resource_name=f"{name}/*",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)
        map_runs = stack.format_arn(service="states", resource="mapRun", resource_name=f"{name}/*",
                                    arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"],
                                                                  resources=[machine_arn]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions]))
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["states:DescribeMapRun", "states:UpdateMapRun"], resources=[map_runs]))

    def _acknowledge(self, name: str, tasks: dict[str, lambda_.Function], bucket: s3.IBucket) -> None:
        stack = Stack.of(self)
        acknowledge(self.state_machine, "AwsSolutions-IAM5[Resource::*]",
                    "Log delivery and X-Ray actions of Step Functions have no resource-level permissions.")
        for what in ("execution", "mapRun"):
            acknowledge(self.state_machine,
                        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                        f"{what}:{name}/*]",
                        "The Distributed Map's child executions and map runs of this one state machine.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(self.state_machine, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's read grant on the batch bucket (items files) and its key.")
        acknowledge(self.state_machine,
                    f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(bucket.node.default_child)}.Arn>/*]",
                    "Items files of any batch run in the batch bucket.")
        for name_, fn in tasks.items():
            acknowledge(self.state_machine,
                        f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(fn.node.default_child)}.Arn>:*]",
                        f"Invoking {name_} by any version or alias of that one function.")


class Function(Construct):
    """A Lambda function of the functions/ asset, with its own role, log group and tracing."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        handler: str,
        description: str,
        environment: dict[str, str],
        layer: lambda_.ILayerVersion,
        timeout: Duration = Duration.seconds(10),
        memory: int = 512,
        reserved_concurrency: int | None = None,
        code: lambda_.Code,
        runtime: lambda_.Runtime,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = log_group(self, "Logs", logs.RetentionDays.ONE_MONTH)
        self.service = id.lower()  # Powertools' service name: the "service" dimension of the function's metrics
        self.dead_letters: sqs.Queue | None = None  # async_dead_letters
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=code,  # infra/code.py: the sources of functions/, with their bytecode where synth can make it
            description=description,
            layers=[layer],
            timeout=timeout,
            memory_size=memory,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": self.service,
                "POWERTOOLS_METRICS_NAMESPACE": "Treue",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        self._acknowledge()

    def _acknowledge(self) -> None:
        """The cdk-nag and checkov findings every function has, each with its reason."""
        acknowledge(
            self.function,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AWSLambdaBasicExecutionRole only lets the function write CloudWatch Logs streams.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions.",
        )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                self.function,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's encrypt/decrypt grant on the stack's own data key; the resource is that one key.",
            )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"{self.function.runtime.name}: the runtime of the Powertools v3 layer Treue is tested on (cdk context "
            "python_version).",
        )
        cfn = self.function.node.default_child
        checkov_skip(cfn, "CKV_AWS_117",
                     "No VPC: the function reaches only AWS APIs (IAM-authorized, TLS) and the public internet "
                     "(gift card providers, webhook receivers); a VPC would add NAT gateways and nothing to protect.")
        checkov_skip(cfn, "CKV_AWS_173",
                     "Environment variables hold resource names, ARNs and settings, no secrets (webhook secrets and "
                     "codes are sealed with KMS in the table); Lambda encrypts them at rest with its own key.")

    def metric(self, name: str, *, statistic: str = "Sum", period: Duration = Duration.minutes(5)) -> cw.Metric:
        """A metric the function's code publishes with Powertools (namespace Treue, dimension service)."""
        return cw.Metric(namespace="Treue", metric_name=name, dimensions_map={"service": self.service},
                         statistic=statistic, period=period)

    def async_dead_letters(self, key: kms.IKey) -> sqs.Queue:
        """For a function invoked asynchronously (a schedule): an event whose invocation still fails after
        Lambda's two retries goes to this encrypted queue, kept 14 days."""
        queue = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                          enforce_ssl=True, retention_period=Duration.days(14))
        acknowledge(queue, "AwsSolutions-SQS3",
                    "This queue is the dead-letter queue of the function's asynchronous invocations.")
        self.dead_letters = queue
        cfn = self.function.node.default_child
        cfn.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=queue.queue_arn)
        queue.grant_send_messages(self.function)
        return queue


class AccrualQueue(Construct):
    """The POS/shop accrual queue with its DLQ; the consumer reports partial batch failures."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, consumer: lambda_.Function) -> None:
        super().__init__(scope, id)
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * consumer.timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=5),
        )
        consumer.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
            )
        )
        self.dlq.grant_send_messages(consumer)
        consumer.add_environment("ACCRUAL_DLQ_URL", self.dlq.queue_url)


class WebhookDeliveries(Construct):
    """Events from the table stream fan out to a delivery queue; the sender retries with backoff.

    The sender sets each failed message's visibility to the backoff delay; after 16 receives (more than
    24 hours) a delivery moves to the DLQ. The stream mapping passes only new event items.
    """

    MAX_RECEIVES = 16

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, table: ddb.ITable, fanout: lambda_.Function,
                 sender: lambda_.Function, requesters: list[lambda_.Function] | None = None) -> None:
        super().__init__(scope, id)
        self.dlq = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                             enforce_ssl=True, retention_period=Duration.days(14))
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * sender.timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=self.MAX_RECEIVES),
        )
        self.stream_failures = sqs.Queue(self, "StreamFailures", encryption=sqs.QueueEncryption.KMS,
                                         encryption_master_key=key, enforce_ssl=True,
                                         retention_period=Duration.days(14))
        acknowledge(self.stream_failures, "AwsSolutions-SQS3",
                    "This queue is the on-failure destination (a DLQ) of the stream mapping: it holds the "
                    "descriptions of stream batches the fan-out gave up on; nothing consumes it to redrive.")
        fanout.add_event_source(sources.DynamoEventSource(
            table, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=100,
            max_batching_window=Duration.seconds(1), retry_attempts=20, bisect_batch_on_error=True,
            report_batch_item_failures=True, on_failure=sources.SqsDlq(self.stream_failures),
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"NewImage": {"kind": {"S": lambda_.FilterRule.is_equal("event")}}},
            })],
        ))
        sender.add_event_source(sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True))
        self.queue.grant_send_messages(fanout)
        # the sender defers deliveries (a new message with a delay) and dead-letters after its last attempt
        self.queue.grant_send_messages(sender)
        self.dlq.grant_send_messages(sender)
        sender.add_environment("WEBHOOK_QUEUE_URL", self.queue.queue_url)
        sender.add_environment("WEBHOOK_DLQ_URL", self.dlq.queue_url)
        sender.add_environment("WEBHOOK_RETRY_BASE_SECONDS", "30")
        fanout.add_environment("WEBHOOK_QUEUE_URL", self.queue.queue_url)
        for requester in requesters or ():  # the webhooks API queues redeliveries
            self.queue.grant_send_messages(requester)
            requester.add_environment("WEBHOOK_QUEUE_URL", self.queue.queue_url)


class ProgressStream(Construct):
    """The table stream's ``points.earned`` events to the Progress function (referrals, milestones).

    Failed records are reported and retried from, bisecting the batch; after the last retry the mapping
    sends their description to the failure queue (its depth has an alarm).
    """

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, table: ddb.ITable,
                 consumer: lambda_.Function) -> None:
        super().__init__(scope, id)
        self.stream_failures = sqs.Queue(self, "StreamFailures", encryption=sqs.QueueEncryption.KMS,
                                         encryption_master_key=key, enforce_ssl=True,
                                         retention_period=Duration.days(14))
        acknowledge(self.stream_failures, "AwsSolutions-SQS3",
                    "This queue is the on-failure destination (a DLQ) of the stream mapping: it holds the "
                    "descriptions of stream batches the Progress function gave up on; nothing consumes it.")
        consumer.add_event_source(sources.DynamoEventSource(
            table, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=100,
            max_batching_window=Duration.seconds(1), retry_attempts=20, bisect_batch_on_error=True,
            report_batch_item_failures=True, on_failure=sources.SqsDlq(self.stream_failures),
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"NewImage": {"kind": {"S": lambda_.FilterRule.is_equal("event")},
                                          "type": {"S": lambda_.FilterRule.is_equal("points.earned")}}},
            })],
        ))


GATEWAY_RESPONSES = {
    # type → (status, problem slug, title, detail)
    apigw.ResponseType.UNAUTHORIZED: ("401", "unauthenticated", "Missing, invalid or revoked API key",
                                      "send Authorization: Bearer <API key>"),
    apigw.ResponseType.ACCESS_DENIED: ("403", "forbidden", "The API key may not call this route",
                                       "this key is not allowed to call this route"),
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN: ("404", "no-such-route", "No such route",
                                                      "this method and path are not a route of this API"),
    apigw.ResponseType.THROTTLED: ("429", "throttled", "Too many requests",
                                   "this program's request rate is over its limit (RateLimit-Policy); retry after "
                                   "Retry-After seconds"),
    apigw.ResponseType.INVALID_API_KEY: ("403", "program-not-enabled", "The program has no API usage plan key",
                                         "the operator enables the program's API access (treue program enable-api)"),
    apigw.ResponseType.DEFAULT_4_XX: (None, "bad-request", "The request was rejected", "see the status code"),
    apigw.ResponseType.DEFAULT_5_XX: (None, "gateway-error", "The gateway failed", "retry later"),
}


class PartnerApi(Construct):
    """The REST API: API-key authorizer, problem+json gateway responses, access logs, tracing.

    Fair share between programs: the authorizer returns each request's program id as its usage
    identifier (``usageIdentifierKey``; API key source AUTHORIZER), every authorized method requires an
    API key, and the usage plan ``usage_plan`` throttles each API key, that is each program, to
    ``program_rate_limit`` requests per second with bursts of ``program_burst_limit``. Provisioning adds
    one API Gateway key (value = the program id) per program to the plan (treue.store.usage_plans). Over
    the limit: 429 problem+json with ``Retry-After``, ``RateLimit`` and ``RateLimit-Policy``.

    Tracing: the stage samples by its own X-Ray rule (``sampling``: the fixed rate and the reservoir per
    second), and the authorizer and the integrations follow the stage's decision. Execution logging at ERROR
    (the access log has every request).
    """

    STAGE = "prod"

    def __init__(self, scope: Construct, id: str, *, authorizer_fn: lambda_.Function, program_rate_limit: int = 50,
                 program_burst_limit: int = 100, sampling: tuple[float, int] = (0.05, 0)) -> None:
        super().__init__(scope, id)
        access_logs = log_group(self, "AccessLogs", logs.RetentionDays.THREE_MONTHS)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name="treue",
            description="Treue partner API",
            cloud_watch_role=True,
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,  # the program id, never a client header
            # answers sent as bytes (a statement's PDF): to a request whose first Accept type is one of them
            binary_media_types=list(BINARY_MEDIA_TYPES),
            deploy_options=apigw.StageOptions(
                stage_name=self.STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                # errors only: INFO wrote about 2 KB per request that nothing reads (the access log has
                # every request with its status; Lambda logs the functions' own lines)
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=200,
                throttling_burst_limit=400,
            ),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=authorizer_fn,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(0),  # revocation takes effect at once
        )
        self.usage_plan = self.api.add_usage_plan(
            "ProgramUsagePlan", name="treue-programs",
            description="Each program's API key (value: the program id) is throttled on its own",
            throttle=apigw.ThrottleSettings(rate_limit=program_rate_limit, burst_limit=program_burst_limit),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        self._problem_responses(program_rate_limit)
        self.sampling_rule = self._sampling_rule(*sampling)
        self.api.root.add_resource("v1")
        self._acknowledge()

    def _sampling_rule(self, rate: float, reservoir: int) -> xray.CfnSamplingRule:
        """The stage's X-Ray sampling rule: ``reservoir`` requests a second, then ``rate`` of the others. It
        matches this stage only (service name and ARN), ahead of the account's default rule (priority 10000)."""
        if not 0 <= rate <= 1 or reservoir < 0:
            raise ValueError(f"X-Ray sampling: rate {rate} must be within 0 to 1, reservoir {reservoir} at least 0")
        stage = self.api.deployment_stage
        stack = Stack.of(self)
        return xray.CfnSamplingRule(self, "TraceSampling", sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
            rule_name=f"{stack.stack_name[:28]}-api",  # at most 32 characters, one rule per stack
            priority=1000, fixed_rate=rate, reservoir_size=reservoir, version=1,
            service_name=f"{self.api.rest_api_name}/{self.STAGE}", service_type="AWS::ApiGateway::Stage",
            resource_arn=stage.stage_arn, host="*", http_method="*", url_path="*",
        ))

    def _problem_responses(self, program_rate_limit: int) -> None:
        """The gateway's own answers (GATEWAY_RESPONSES) as problem+json; 429 with the rate-limit headers."""
        # IETF draft-ietf-httpapi-ratelimit-headers: the policy (quota per window of 1 s) and, when throttled,
        # nothing left for about a second. Gateway response headers are static: the refill of a token bucket
        # at program_rate_limit per second makes a request possible again within a second.
        limited = {
            "Retry-After": "'1'",
            "RateLimit-Policy": f"'\"program\";q={program_rate_limit};w=1'",
            "RateLimit": "'\"program\";r=0;t=1'",
        }
        for response_type, (status, slug, title, detail) in GATEWAY_RESPONSES.items():
            body = {"type": PROBLEM + slug, "title": title, "detail": detail,
                    "instance": "$context.path", "request_id": "$context.requestId"}
            if status:
                body["status"] = int(status)
            self.api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers={"Content-Type": "'application/problem+json'",
                                  **(limited if response_type.response_type == "THROTTLED" else {})},
                templates={"application/json": json.dumps(body)},
            )

    def _acknowledge(self) -> None:
        checkov_skip(self.api.deployment_stage.node.default_child, "CKV_AWS_120",
                     "No response cache: answers are per API key and must be current (balances, orders, vouchers); "
                     "the catalog, the one cacheable read, is cached in the warm function.")
        acknowledge(self.api, "AwsSolutions-APIG2",
                    "Requests are validated in the functions (pydantic) and answered as problem+json "
                    "with every failing field, which API Gateway's validator cannot do.")
        acknowledge(self.api, "AwsSolutions-APIG3",
                    "WAF is an operator choice with its own cost; attach a web ACL to the stage when needed.")
        acknowledge(self.api, "AwsSolutions-COG4",
                    "Partners authenticate with hashed, scoped, revocable API keys via the Lambda authorizer.")
        acknowledge(self.api, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                              "AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway's account-level CloudWatch role uses the managed push-to-logs policy.")

    def route(self, method: str, path: str, fn: lambda_.Function, *, public: bool = False) -> apigw.Method:
        resource = self.api.root
        for part in path.strip("/").split("/"):
            resource = resource.get_resource(part) or resource.add_resource(part)
        # one invoke permission per function for the whole API (API Gateway may invoke it for any of its routes),
        # not two per method: per method, the routes' permissions alone passed CloudFormation's 500 resources
        integration = apigw.LambdaIntegration(fn, proxy=True, scope_permission_to_method=False)
        if public:
            m = resource.add_method(method, integration, authorization_type=apigw.AuthorizationType.NONE)
            reason = "The API description and its reference page are public, like any API's documentation."
            acknowledge(m, "AwsSolutions-APIG4", reason)
            checkov_skip(m.node.default_child, "CKV_AWS_59", reason)
            return m
        return resource.add_method(
            method, integration, authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.CUSTOM,
            api_key_required=True,  # the authorizer's usage identifier: the program's usage plan key
        )


class Monitoring(Construct):
    """Alarms (queue depths, function errors, API 5XX, workflows, stream) to an encrypted SNS topic.

    The topic has its own KMS key: CloudWatch alarms of this account and region may publish to the topic
    and use that key (kms:GenerateDataKey*, kms:Decrypt) for it, nothing else (SNS encrypts each message
    with the publisher's access to the key, so without it an alarm changes state and notifies nobody)."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        from_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm", resource_name="*",
                                                          arn_format=ArnFormat.COLON_RESOURCE_NAME)},
        }
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.key = kms.Key(self, "AlarmsKey", description="Treue alarm notifications (SNS topic)",
                           enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN)
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount", principals=[cloudwatch],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"], conditions=from_alarms,
        ))
        self.topic = sns.Topic(self, "Alarms", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount", principals=[cloudwatch],
            actions=["sns:Publish"], resources=[self.topic.topic_arn], conditions=from_alarms,
        ))
        self._action = cw_actions.SnsAction(self.topic)

    def alarm(self, id: str, metric: cw.IMetric, threshold: float, description: str) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        return alarm


def powertools_layer(scope: Construct, version: int, runtime: lambda_.Runtime) -> lambda_.ILayerVersion:
    arn = POWERTOOLS_LAYER.format(region=Stack.of(scope).region, version=version,
                                  python=runtime.name.replace(".", ""))
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)


class ReportJobs(Construct):
    """Finance report jobs: the job queue (one message per continuation of a report) with its DLQ, consumed
    one message at a time by the report worker; results and state under ``reports/`` of ``bucket``.

    ``MAX_RECEIVES`` matches the worker's ``REPORT_ATTEMPTS``: its last attempt marks the report failed
    before the queue gives the message to the DLQ."""

    MAX_RECEIVES = 3
    PREFIX = "reports/*"

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey, worker: lambda_.Function, bucket: s3.IBucket,
                 requester: lambda_.Function) -> None:
        super().__init__(scope, id)
        self.dlq = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                             enforce_ssl=True, retention_period=Duration.days(14))
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * worker.timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=self.MAX_RECEIVES),
        )
        worker.add_event_source(sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True))
        for fn in (worker, requester):  # the first step (POST) and each continuation (worker)
            self.queue.grant_send_messages(fn)
            fn.add_environment("REPORT_QUEUE_URL", self.queue.queue_url)
            fn.add_environment("BATCH_BUCKET", bucket.bucket_name)
        # the worker reads its state and writes state and results; the finance function pre-signs GETs
        bucket.grant_read(worker, self.PREFIX)
        bucket.grant_put(worker, self.PREFIX)
        bucket.grant_delete(worker, self.PREFIX)
        bucket.grant_read(requester, self.PREFIX)
        bucket_arn = Stack.of(self).get_logical_id(bucket.node.default_child)
        for fn in (worker, requester):
            acknowledge(fn, f"AwsSolutions-IAM5[Resource::<{bucket_arn}.Arn>/reports/*]",
                        "Report state and result files: the reports/ prefix of the batch bucket only.")
            for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
                acknowledge(fn, f"AwsSolutions-IAM5[Action::{action}]",
                            "CDK's read grant on the reports/ prefix of the batch bucket.")
        for action in ("s3:PutObjectLegalHold", "s3:PutObjectRetention", "s3:PutObjectTagging",
                       "s3:PutObjectVersionTagging", "s3:Abort*", "s3:DeleteObject*"):
            acknowledge(worker, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's put/delete grants on the reports/ prefix of the batch bucket.")
