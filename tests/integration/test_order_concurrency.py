"""200 concurrent orders against one balance: none overdraws, every accepted point is held."""

from concurrent.futures import ThreadPoolExecutor

from tests.integration.test_orders import member_with
from treue import runtime
from treue.errors import Contention, InsufficientPoints
from treue.logic import orders
from treue.logic.models import OrderRequest


class RecordingStarter:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, order) -> None:
        self.started.append(order.id)


def test_two_hundred_concurrent_orders_never_overdraw(shop):
    member = member_with(shop, 10_000)
    program = runtime.program(shop["program_id"])
    starter = RecordingStarter()
    find = runtime.catalog().get
    request = OrderRequest(member_id=member, item_id="nordlicht-books-eur", denomination=1000,
                           delivery={"method": "api"})

    def one(i: int) -> str:
        try:
            answer, _ = orders.place(runtime.orders(), starter, program, find, request, f"conc-{i}", "partner:k",
                                     runtime.now())
            return answer["order_id"]
        except InsufficientPoints:
            return "refused"
        except Contention:
            return "busy"

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(200)))
    accepted = [r for r in results if r.startswith("ord_")]
    balance = runtime.store().get_balance(shop["program_id"], member)
    assert len(accepted) * 1000 <= 10_000
    assert balance["held"] == len(accepted) * 1000
    assert balance["available"] == 10_000 - balance["held"] >= 0
    assert sorted(starter.started) == sorted(accepted)
    assert results.count("refused") + results.count("busy") + len(accepted) == 200
    assert len(accepted) == 10  # with room for exactly ten, ten are accepted
