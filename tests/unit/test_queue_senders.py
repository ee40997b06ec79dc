"""SenderId → principal → program: the rules the accrual queue consumer trusts."""

import pytest

from treue.errors import QueueSenderTaken, ValidationFailed
from treue.logic import queue_senders
from treue.logic.queue_senders import SenderDirectory, SenderRegistration


class Bindings:
    """In-memory bindings that count reads."""

    def __init__(self, **by_principal: str) -> None:
        self.items = {p: {"principal_id": p, "program_id": pid, "description": "d", "created_at": "t0",
                          "updated_at": "t0"} for p, pid in by_principal.items()}
        self.reads = 0
        self.writes = []

    def get(self, principal_id, consistent=True):
        self.reads += 1
        return self.items.get(principal_id)

    def list(self, program_id):
        return [b for b in self.items.values() if b["program_id"] == program_id]

    def put(self, binding, new):
        self.writes.append((binding, new))
        self.items[binding["principal_id"]] = binding

    def delete(self, program_id, principal_id, now):
        return self.items.pop(principal_id, None) is not None


@pytest.mark.parametrize("sender, principal", [
    ("AROA3XFRBF535PLBIFPI4:shop-export-1", "AROA3XFRBF535PLBIFPI4"),
    ("AROA3XFRBF535PLBIFPI4:i-0abc:x", "AROA3XFRBF535PLBIFPI4"),
    ("AIDAJQABLZS4A3QDU576Q", "AIDAJQABLZS4A3QDU576Q"),
])
def test_a_role_session_counts_as_its_role(sender, principal):
    assert queue_senders.principal_of(sender) == principal


def test_the_directory_remembers_a_binding_for_its_ttl_and_forgets_an_unknown_sender_at_once():
    clock = [100.0]
    bindings = Bindings(AROA3XFRBF535PLBIFPI4="prg_a")
    directory = SenderDirectory(bindings, ttl_seconds=60, clock=lambda: clock[0])
    assert directory.program_of("AROA3XFRBF535PLBIFPI4:one") == "prg_a"
    assert directory.program_of("AROA3XFRBF535PLBIFPI4:two") == "prg_a"
    assert bindings.reads == 1
    del bindings.items["AROA3XFRBF535PLBIFPI4"]
    clock[0] += 59.9
    assert directory.program_of("AROA3XFRBF535PLBIFPI4:one") == "prg_a"  # still within the TTL
    clock[0] += 0.2
    assert directory.program_of("AROA3XFRBF535PLBIFPI4:one") is None
    assert directory.program_of("AIDAJQABLZS4A3QDU576Q") is None
    bindings.items["AIDAJQABLZS4A3QDU576Q"] = {"program_id": "prg_b"}
    assert directory.program_of("AIDAJQABLZS4A3QDU576Q") == "prg_b"  # registered a moment ago: found


@pytest.mark.parametrize("sender", ["", "123456789012", "anonymous", "AKIAIOSFODNN7EXAMPLE", ":AROA3XFRBF535PLBIFPI4"])
def test_senders_that_cannot_be_registered_are_not_looked_up(sender):
    bindings = Bindings()
    assert SenderDirectory(bindings, 60).program_of(sender) is None
    assert bindings.reads == 0


def test_registering_again_changes_only_the_description_and_another_program_gets_a_conflict():
    bindings = Bindings()
    body = SenderRegistration(description="web shop")
    first, created = queue_senders.register(bindings, "prg_a", "AROA3XFRBF535PLBIFPI4", body, "admin:k1", "t1")
    assert created and bindings.writes == [(first, True)]
    again, created = queue_senders.register(bindings, "prg_a", "AROA3XFRBF535PLBIFPI4", body, "admin:k2", "t2")
    assert (again, created) == (first, False) and len(bindings.writes) == 1  # a replay writes nothing
    renamed, created = queue_senders.register(bindings, "prg_a", "AROA3XFRBF535PLBIFPI4",
                                              SenderRegistration(description="shop"), "admin:k2", "t3")
    assert not created and renamed["created_at"] == "t1" and renamed["created_by"] == "admin:k1"
    assert renamed["updated_at"] == "t3" and bindings.writes[-1] == (renamed, False)
    with pytest.raises(QueueSenderTaken):
        queue_senders.register(bindings, "prg_b", "AROA3XFRBF535PLBIFPI4", body, "admin:k3", "t4")
    assert len(bindings.writes) == 2
    with pytest.raises(ValidationFailed):
        queue_senders.register(bindings, "prg_a", "AROA3XFRBF535PLBIFPI4:session", body, "admin:k1", "t5")
