"""Accrual queue senders: which IAM principal may report purchases for which program through SQS.

SQS stamps every message with the system attribute ``SenderId``, the principal id of the sender as
AWS authenticated it: ``AIDA…`` for an IAM user, ``AROA…:<session name>`` for a role session. The
queue consumer trusts that and nothing in the body: the principal id (the part before ``:``, so
every session of a role counts as the role) must be registered to a program, and the message
accrues in that program. A principal is registered to exactly one program.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from treue.errors import QueueSenderNotFound, QueueSenderTaken, ValidationFailed
from treue.logic.models import Strict

if TYPE_CHECKING:
    from treue.logic.ports import SenderBindings

# IAM unique ids: a four-letter type prefix and upper-case letters and digits, 16 to 128 characters.
# Users (AIDA) and roles (AROA) are the principals that send with their own credentials.
PRINCIPAL_ID = re.compile(r"^(AIDA|AROA)[A-Z0-9]{12,124}$")
PRINCIPAL_HINT = (
    "register the unique id of an IAM role (AROA…, `aws iam get-role --role-name NAME --query Role.RoleId`) "
    "or user (AIDA…, `aws iam get-user --user-name NAME --query User.UserId`); not an ARN, a name or a "
    "session name"
)


class SenderRegistration(Strict):
    """PUT /v1/queue-senders/{principal_id}: what the sender is, for the people reading the list."""

    description: str = Field(min_length=1, max_length=200, description="e.g. 'web shop order export (prod)'")


def principal_of(sender_id: str) -> str:
    """The principal id of an SQS ``SenderId``: a role session ``AROA…:name`` counts as its role."""
    return sender_id.split(":", 1)[0].strip()


def check_principal_id(principal_id: str) -> str:
    if not PRINCIPAL_ID.fullmatch(principal_id):
        shown = principal_id[:80]
        raise ValidationFailed(
            f"principal_id {shown!r} is not an IAM user or role unique id: {PRINCIPAL_HINT}",
            errors=[{"location": "path", "field": "principal_id", "reason": PRINCIPAL_HINT}],
        )
    return principal_id


def view(binding: dict[str, Any]) -> dict[str, Any]:
    return {k: binding[k] for k in ("principal_id", "description", "created_at", "updated_at", "created_by")
            if binding.get(k) is not None}


def register(bindings: SenderBindings, program_id: str, principal_id: str, body: SenderRegistration,
             actor: str, now: str) -> tuple[dict[str, Any], bool]:
    """Bind ``principal_id`` to the program → (the binding, created). Registering it again only updates
    the description; a principal of another program is a 409 and changes nothing."""
    check_principal_id(principal_id)
    found = bindings.get(principal_id, consistent=True)
    if found is not None and found["program_id"] != program_id:
        raise QueueSenderTaken(f"principal {principal_id} sends for another program; a principal sends for "
                               "one program only (delete it there first)")
    if found is not None and found.get("description") == body.description:
        return found, False
    binding = {
        "principal_id": principal_id,
        "program_id": program_id,
        "description": body.description,
        "created_at": found["created_at"] if found else now,
        "created_by": found.get("created_by", actor) if found else actor,
        "updated_at": now,
    }
    bindings.put(binding, new=found is None)
    return binding, found is None


def remove(bindings: SenderBindings, program_id: str, principal_id: str, now: str) -> None:
    if not PRINCIPAL_ID.fullmatch(principal_id) or not bindings.delete(program_id, principal_id, now):
        raise QueueSenderNotFound(f"principal {principal_id[:80]} is not a queue sender of this program")


def require(bindings: SenderBindings, program_id: str, principal_id: str) -> dict[str, Any]:
    found = bindings.get(principal_id, consistent=True) if PRINCIPAL_ID.fullmatch(principal_id) else None
    if found is None or found["program_id"] != program_id:
        raise QueueSenderNotFound(f"principal {principal_id[:80]} is not a queue sender of this program")
    return found


class SenderDirectory:
    """SenderId → program id for the queue consumer, remembered per warm function for ``ttl_seconds``.

    Only found bindings are remembered: a sender registered a moment ago is recognised by its next
    message; a deleted binding stops working within ``ttl_seconds``.
    """

    def __init__(self, bindings: SenderBindings, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bindings = bindings
        self.ttl = ttl_seconds
        self.clock = clock
        self._known: dict[str, tuple[float, str]] = {}  # principal id → (read at, program id)

    def program_of(self, sender_id: str) -> str | None:
        principal = principal_of(sender_id)
        if not PRINCIPAL_ID.fullmatch(principal):
            return None
        now = self.clock()
        cached = self._known.get(principal)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        found = self.bindings.get(principal, consistent=False)
        if found is None:
            self._known.pop(principal, None)
            return None
        program_id: str = found["program_id"]
        self._known[principal] = (now, program_id)
        return program_id
