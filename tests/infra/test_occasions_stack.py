"""The Occasions function in the template: run hourly by its schedule rule (each program walked once a day), with
exactly the DynamoDB actions it needs, its dead-letter queue and the alarm on it. The twin runs the same rule."""

from __future__ import annotations

from infra.twin.template import load
from tests.infra.conftest import of_type
from tests.infra.test_stack import _role_actions


def test_occasions_run_hourly_and_may_read_and_write_items_but_not_delete(synthesized, template):
    model = load(synthesized)
    (schedule,) = [s for s in model.schedules
                   if model.functions[s.function].handler == "treue.handlers.occasions.handler"]
    assert schedule.seconds == 3600
    actions = _role_actions(template, schedule.function)
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem"}
    assert not {a for a in actions if a.startswith(("states:", "s3:", "sqs:ReceiveMessage"))}
    function = template["Resources"][schedule.function]["Properties"]
    assert function["Timeout"] == 300
    assert "TargetArn" in function["DeadLetterConfig"]  # failed runs, after Lambda's retries
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert any("Scheduled occasions runs failed" in a["Properties"].get("AlarmDescription", "")
               for a in alarms.values())
