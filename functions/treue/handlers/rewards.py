"""Rewards function: brands issue gift cards and vouchers paid from the program budget (no points)."""

from typing import Annotated, Any

from treue import runtime
from treue.errors import RewardNotFound
from treue.handlers.http import Body, Response, caller, dispatch, idempotency_key, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models import rewards as m
from treue.handlers.models.orders import RevealedCodes
from treue.handlers.tracing import Tracer
from treue.logic import orders, rewards
from treue.logic.models import RewardRequest

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Rewards")


@responses({202: {"description": "Accepted; the payout workflow issues and delivers it",
                  "content": {"application/json": {"model": m.RewardAccepted}}}})
@tracer.capture_method
def issue(body: Annotated[RewardRequest, Body()]) -> Response[Any]:
    who = caller(app)
    answer, replayed = rewards.issue(runtime.orders(), runtime.budgets(), runtime.starter(),
                                     runtime.program(who.program_id), runtime.catalog().get, body,
                                     idempotency_key(app, "reward"), who.actor, runtime.now())
    if not replayed:
        metrics.add_metric(name="RewardsAccepted", unit=MetricUnit.Count, value=1)
    logger.info("reward accepted", extra={"reward_id": answer["reward_id"], "replayed": replayed})
    return Response(202, "application/json", m.RewardAccepted(**answer, replayed=replayed).model_dump(mode="json"),
                    headers={"Location": f"/v1/rewards/{answer['reward_id']}"})


@tracer.capture_method
def get_reward(reward_id: str) -> m.Reward:
    who = caller(app)
    found = runtime.orders().get(who.program_id, rewards.require_id(reward_id))
    if found is None or not found.is_reward:
        raise RewardNotFound(f"reward {reward_id[:40]} does not exist")
    return m.Reward(**rewards.view(found))


@tracer.capture_method
def codes(reward_id: str) -> RevealedCodes:
    who = caller(app)
    get_reward(reward_id)  # 404 unless it is a reward of this program
    out = orders.reveal(runtime.orders(), runtime.vault(), who.program_id, reward_id, who.actor, runtime.now())
    logger.info("codes revealed", extra={"reward_id": reward_id, "actor": who.actor, "codes": len(out["codes"])})
    return RevealedCodes(order_id=reward_id, codes=out["codes"])


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
