"""The program table's schema: its key and index names, its definition, and the keys of the items.

Plain data and string builders, importing nothing of treue: the stores build their keys here, the CDK table
construct (``infra/components.py``) reads its partition and sort key and its index from
:data:`TABLE`, and the tests create their table with :func:`create_table_args`.

Single-table layout; every key of a program's data starts with ``P#<program id>``:

    pk                                   sk                  what
    PROGRAM#<pid>                        PROGRAM             program settings (the current version)
    P#<pid>#PROGRAM                      V#<version>         one version of the settings (``treue.store.programs``)
    P#<pid>#RULES                        R#<rid>#C           an earning rule as it stands (``treue.store.rules``)
    P#<pid>#RULES                        R#<rid>#V#<version> one version of the rule (immutable)
    P#<pid>#SEGMENTS                     S#<sid>#C           a custom segment as it stands (``treue.store.segments``)
    P#<pid>#SEGMENTS                     S#<sid>#V#<version> one version of the segment (immutable)
    P#<pid>#SEGMENTS                     SNAPSHOT            member counts per segment and tier; gsi1 SEGMENTS#SNAPSHOTS
    OCCASIONS                            <pid>               a program with birthday or anniversary rules and the
                                                             occasions schedule's progress (``treue.store.occasions``)
    APIKEY#<key id>                      APIKEY              API key hash, scope, program
    P#<pid>#MEMBER#<mid>                 MEMBER              member profile
    P#<pid>#MEMBER#<mid>                 BALANCE             available, pending, held, debt, lifetime counters,
                                                             ``dated`` (points credited with an expiry date)
    P#<pid>#MEMBER#<mid>                 BUCKET#<on>         points credited with expiry date <on> (net of
                                                             reversals); gsi1 EXPIRY#DUE#<shard> <on>#<pid>#<mid>
    P#<pid>#MEMBER#<mid>                 PENDING#<at>#<id>   a purchase's pending points, available at <at>;
                                                             gsi1 PENDING#DUE#<shard> <at>#<pid>#<mid>
    P#<pid>#MEMBER#<mid>                 ENTRY#<posting id>  ledger posting (time-ordered id)
    P#<pid>#MEMBER#<mid>                 USE#<rid>#<window>  times an earning rule paid the member (day, period, life)
    P#<pid>#MEMBER#<mid>                 REFERRAL#<mid>      a member this member referred (pending, completed)
    P#<pid>#RULEBUDGET                   <rid>               points an earning rule with a budget has paid (all members)
    P#<pid>#IDENT#<kind>#<value>         IDENT               identifier → member (uniqueness guard)
    P#<pid>#IDEM#<kind>#<reference>      IDEM                idempotency guard with the first result
    P#<pid>#ACCT#<shard>                 <account>           account totals (program and all members), sharded
    P#<pid>#AUDIT#<record id>            AUDIT               audit record (``treue.core.audit``)

One sparse global secondary index (``gsi1``: ``gsi1pk``/``gsi1sk``) serves program-wide reads:
postings and budget movements (``P#<pid>#JOURNAL``, by time), orders (``P#<pid>#ORDERS``, by
time), member balances (``P#<pid>#BALANCES``), earning rules as they stand (``P#<pid>#RULES``),
unsealed audit records (``AUDIT#PENDING#<shard>``), expiry buckets and pending points by the day they are
due (``EXPIRY#DUE#<shard>``, ``PENDING#DUE#<shard>``) and the audit trail (``treue.store.audit``). The other
stores' items (orders, budget, batches, webhooks…) are laid out in their modules.

API keys are the one exception to the program prefix: the key is how the program is found.
"""

from __future__ import annotations

import zlib
from typing import Any

PK, SK = "pk", "sk"  # the table's partition and sort key (strings)
GSI = "gsi1"  # the table's one sparse index
GSI_PK, GSI_SK = "gsi1pk", "gsi1sk"  # its partition and sort key (strings)
TABLE_KEYS = (PK, SK)
INDEX_KEYS = (GSI_PK, GSI_SK)

ACCOUNT_SHARDS = 8  # account totals per program are spread over this many partitions
PENDING_SHARDS = 4  # unsealed audit records over this many index partitions
LIFECYCLE_SHARDS = 4  # expiry buckets and pending points due over this many index partitions (each)
BUCKET_PREFIX = "BUCKET#"  # in a member's partition: the points credited with one expiry date (sk BUCKET#<on>)
PENDING_PREFIX = "PENDING#"  # in a member's partition: a purchase's pending points (PENDING#<available_at>#<id>)

# The definition as DynamoDB's API spells it: every key attribute a string, the index projecting all
TABLE: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in (*TABLE_KEYS, *INDEX_KEYS)],
    "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": GSI,
            "KeySchema": [{"AttributeName": GSI_PK, "KeyType": "HASH"}, {"AttributeName": GSI_SK, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}


def create_table_args(name: str) -> dict[str, Any]:
    """Arguments of ``create_table`` for a table of this schema named ``name`` (billed per request)."""
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST", **TABLE}


# ------------------------------------------------------------ keys


def program_pk(program_id: str) -> str:
    return f"PROGRAM#{program_id}"


def program_versions_pk(program_id: str) -> str:
    """The program's settings history: one immutable item per version."""
    return f"P#{program_id}#PROGRAM"


def program_version_sk(version: int) -> str:
    """A version's sort key, zero-padded so the versions sort in order."""
    return f"V#{version:010d}"


def rules_pk(program_id: str) -> str:
    """The program's earning rules: each rule's current item and its immutable versions, one partition."""
    return f"P#{program_id}#RULES"


def rule_sk(rule_id: str) -> str:
    """A rule's current item (``C`` sorts before its versions' ``V``)."""
    return f"R#{rule_id}#C"


def rule_version_sk(rule_id: str, version: int) -> str:
    """One version of a rule, zero-padded so a rule's versions sort in order after its current item."""
    return f"R#{rule_id}#V#{version:010d}"


def segments_pk(program_id: str) -> str:
    """The program's custom segments (current items and versions) and its segment snapshot
    (``treue.store.segments``)."""
    return f"P#{program_id}#SEGMENTS"


def segment_sk(segment_id: str) -> str:
    """A custom segment as it stands (``C`` sorts before its versions' ``V``)."""
    return f"S#{segment_id}#C"


def segment_version_sk(segment_id: str, version: int) -> str:
    """One version of a custom segment, zero-padded so they sort in order after its current item."""
    return f"S#{segment_id}#V#{version:010d}"


SEGMENT_SNAPSHOT_SK = "SNAPSHOT"  # in segments_pk: the member counts per segment and tier
SEGMENT_SNAPSHOTS = "SEGMENTS#SNAPSHOTS"  # gsi1pk listing every program's snapshot item (gsi1sk: the program id)


def month_sk(month: str) -> str:
    """A member's purchases of one calendar month (``YYYY-MM``, UTC): qualifying points, spend, purchases,
    categories (written by accrual)."""
    return f"MONTH#{month}"


OCCASIONS_PK = "OCCASIONS"  # one item per program with occasion rules (sort key: the program id)


def api_key_pk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


def member_pk(program_id: str, member_id: str) -> str:
    return f"P#{program_id}#MEMBER#{member_id}"


def rule_use_sk(rule_id: str, window: str) -> str:
    """A member's count of the times rule ``rule_id`` paid in ``window`` (``day:2026-12-03``, ``life``…)."""
    return f"USE#{rule_id}#{window}"


REFERRAL_PREFIX = "REFERRAL#"


def referral_sk(referee_id: str) -> str:
    """In the referrer's partition: the member ``referee_id`` they referred (``treue.store.ledger``)."""
    return f"{REFERRAL_PREFIX}{referee_id}"


def rule_budget_pk(program_id: str) -> str:
    """The points each earning rule with a budget has paid, all members together (sort key: the rule id)."""
    return f"P#{program_id}#RULEBUDGET"


def ident_pk(program_id: str, kind: str, value: str) -> str:
    return f"P#{program_id}#IDENT#{kind}#{value}"


def idem_pk(program_id: str, kind: str, reference: str) -> str:
    return f"P#{program_id}#IDEM#{kind}#{reference}"


def account_pk(program_id: str, shard: int) -> str:
    return f"P#{program_id}#ACCT#{shard}"


def audit_pk(program_id: str, record_id: str) -> str:
    return f"P#{program_id}#AUDIT#{record_id}"


def batch_pk(program_id: str, batch_id: str) -> str:
    return f"P#{program_id}#BATCH#{batch_id}"


def counts_pk(program_id: str, batch_id: str) -> str:
    return f"{batch_pk(program_id, batch_id)}#COUNTS"


def budget_pk(program_id: str) -> str:
    return f"P#{program_id}#BUDGET"


def event_pk(program_id: str, event_id: str) -> str:
    return f"P#{program_id}#EVENT#{event_id}"


def order_pk(program_id: str, order_id: str) -> str:
    return f"P#{program_id}#ORDER#{order_id}"


def voucher_pk(program_id: str, code_hash: str) -> str:
    return f"P#{program_id}#VOUCHER#{code_hash}"


def donation_pk(program_id: str, donation_id: str) -> str:
    return f"P#{program_id}#DONATION#{donation_id}"


def report_pk(program_id: str, report_id: str) -> str:
    return f"P#{program_id}#REPORT#{report_id}"


def webhook_pk(program_id: str) -> str:
    return f"P#{program_id}#WEBHOOK"


def queue_sender_pk(principal_id: str) -> str:
    """The principal's binding to its one program (across programs)."""
    return f"QSENDER#{principal_id}"


def queue_senders_pk(program_id: str) -> str:
    """The program's list of queue senders."""
    return f"P#{program_id}#QSENDER"



def account_shard(posting_id: str) -> int:
    return zlib.crc32(posting_id.encode()) % ACCOUNT_SHARDS


def pending_shard(program_id: str) -> int:
    return zlib.crc32(program_id.encode()) % PENDING_SHARDS


def due_keys(kind: str, program_id: str, member_id: str, when: str) -> dict[str, str]:
    """Index keys listing a member's expiry bucket (``kind`` EXPIRY, ``when`` its date) or pending points
    (PENDING, their ``available_at``) by when they are due, over ``LIFECYCLE_SHARDS`` partitions."""
    shard = zlib.crc32(f"{program_id}#{member_id}".encode()) % LIFECYCLE_SHARDS
    return {GSI_PK: f"{kind}#DUE#{shard}", GSI_SK: f"{when}#{program_id}#{member_id}"}


def journal_keys(program_id: str, created_at: str, entry_id: str) -> dict[str, str]:
    """Index attributes listing a posting or budget movement in the program's journal, by time."""
    return {GSI_PK: f"P#{program_id}#JOURNAL", GSI_SK: f"{created_at}#{entry_id}"}


def balances_keys(program_id: str, member_id: str) -> dict[str, str]:
    """Index attributes listing a member's balance among the program's balances."""
    return {GSI_PK: f"P#{program_id}#BALANCES", GSI_SK: member_id}


def rules_keys(program_id: str, rule_id: str) -> dict[str, str]:
    """Index attributes listing a rule's current item among the program's rules, by rule id."""
    return {GSI_PK: f"P#{program_id}#RULES", GSI_SK: f"R#{rule_id}"}


def pending_audit_keys(program_id: str, record_id: str) -> dict[str, str]:
    """Index attributes listing an unsealed audit record for the sealer."""
    return {GSI_PK: f"AUDIT#PENDING#{pending_shard(program_id)}", GSI_SK: f"{program_id}#{record_id}"}
