"""The audit sealer keeps up and is fair: it loops within its time, a turn per program in rotation."""

from treue import runtime
from treue.core import audit
from treue.handlers import audit as sealer
from treue.logic import provisioning
from treue.store.audit import AuditStore
from treue.store.schema import pending_shard
from treue.store.table import audit_put


class Remaining:
    """A Lambda context whose remaining time is given."""

    def __init__(self, millis: int) -> None:
        self.millis = millis
        self.function_name, self.memory_limit_in_mb = "treue-test", 512
        self.invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:treue-test"
        self.aws_request_id = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def programs_in_one_shard(store, count=2):
    """Programs whose pending records share an index partition (ids sorting one after the other)."""
    by_shard: dict[int, list[str]] = {}
    while True:
        pid = provisioning.create_program(store, "P", "EUR", runtime.now())["program_id"]
        by_shard.setdefault(pending_shard(pid), []).append(pid)
        for pids in by_shard.values():
            if len(pids) == count:
                return sorted(pids)


def backlog(store, program_id, n):
    for i in range(n):
        record = audit.new_record(program_id, "test.backlog", "test", f"t{i}", runtime.now(), {"i": i})
        store.ddb.put_item(**audit_put(store.table, record)["Put"])


def test_two_programs_with_a_backlog_both_progress_in_one_capped_run(store):
    early, late = programs_in_one_shard(store)
    trail = AuditStore(store)
    # the key records of every program made on the way are sealed first: only the two backlogs compete
    trail.seal_pending(max_records=10_000)
    before = {pid: len(list(trail.chain(pid))) for pid in (early, late)}
    backlog(store, early, 30)
    backlog(store, late, 30)
    sealed = trail.seal_pending(max_records=20)
    assert sum(sealed.values()) == 20
    assert sealed[early] >= 8 and sealed[late] >= 8, sealed  # the late-sorting program is not starved
    sealed_again = trail.seal_pending(max_records=10_000)
    for pid in (early, late):  # the rest, each record once, in one chain per program
        assert trail.pending_count(pid) == 0 and trail.verify(pid).intact
        assert len(list(trail.chain(pid))) == before[pid] + sealed[pid] + sealed_again[pid] == before[pid] + 30


def test_a_rotation_gives_each_program_a_turn_per_round():
    class Trail:
        def __init__(self):
            self.waiting = {"a": 500, "b": 3, "c": 500}
            self.turns: list[tuple[str, int]] = []

        def programs_with_pending(self):
            return sorted(self.waiting)

        def seal_next(self, program_id, limit):
            done = min(limit, self.waiting[program_id])
            self.waiting[program_id] -= done
            self.turns.append((program_id, done))
            return done

    trail = Trail()
    sealed = audit.seal_round_robin(trail, max_records=10_000, turn=100, order=lambda _: None)
    assert sealed == {"a": 500, "b": 3, "c": 500}
    assert trail.turns[:3] == [("a", 100), ("b", 3), ("c", 100)]  # b done after its first turn
    assert trail.turns[3:5] == [("a", 100), ("c", 100)]
    budget = iter([1.0, 1.0, 0.0])
    trail = Trail()
    assert audit.seal_round_robin(trail, max_records=10_000, turn=100, order=lambda _: None,
                                  time_left=lambda: next(budget)) == {"a": 100, "b": 3}


def test_the_handler_seals_a_backlog_larger_than_one_turn_within_its_time(store, monkeypatch):
    monkeypatch.setattr(audit, "SEAL_TURN", 5)
    program_id = provisioning.create_program(store, "P", "EUR", runtime.now())["program_id"]
    own = runtime.audit_trail().pending_count(program_id)
    backlog(store, program_id, 5 * 2 + 3)
    out = sealer.handler({}, Remaining(60_000))
    assert out["sealed"][program_id] == 5 * 2 + 3 + own
    assert runtime.audit_trail().pending_count(program_id) == 0


def test_the_handler_stops_when_its_time_is_used_up(store):
    program_id = provisioning.create_program(store, "P", "EUR", runtime.now())["program_id"]
    own = runtime.audit_trail().pending_count(program_id)
    backlog(store, program_id, 10)
    assert sealer.handler({}, Remaining(int(sealer.MARGIN_SECONDS * 1000) - 1))["sealed"] == {}
    assert runtime.audit_trail().pending_count(program_id) == 10 + own
