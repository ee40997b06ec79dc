"""SegmentCounts: counts each listed program's members per segment and per tier (EventBridge schedule; the twin
runs it every few seconds), cheap when nothing changed (``treue.logic.segment_admin``).

The event may say ``{"force": true}`` (count again now) and name one ``program_id`` (that program only, listed
first if it was not).
"""

import time
from typing import Any

from treue import runtime
from treue.handlers.logs import Logger
from treue.logic import segment_admin

logger = Logger()
MARGIN_SECONDS = 10.0  # a page (100 members: 100 queries and a checkpoint) ends well within this


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
    only = event.get("program_id") if isinstance(event.get("program_id"), str) else None
    done = segment_admin.count_programs(runtime.segments(), runtime.program, runtime.now,
                                        lambda: time.monotonic() < deadline, force=event.get("force") is True,
                                        only=only)
    worked = [d for d in done if not d.get("skipped")]
    if worked:
        logger.info("segments counted", extra={"programs": worked})
    return {"programs": len(done), "counted": worked}
