"""Treue: reward fulfillment and payouts on AWS Lambda.

In AWS Lambda (``AWS_EXECUTION_ENV`` names a Lambda runtime), importing this package pauses Python's
cyclic garbage collector until the function's first invocation has been answered. A cold start allocates
hundreds of thousands of objects (boto3's service models and clients, pydantic's schemas) and almost none
of them become cyclic garbage, yet every few thousand allocations the collector walks them, and its
full collections walk all of them: on this machine that was a third of a function's init beyond the
platform's floor. ``end_init_pause`` then moves what init made into the permanent generation
(``gc.freeze``), so later collections walk only what invocations allocate, and starts the collector
again. Outside Lambda (tests, the local twin, the CLI) nothing changes.
"""

import gc as _gc
import os as _os

_paused = _os.environ.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_") and _gc.isenabled()
if _paused:
    _gc.disable()


def end_init_pause() -> None:
    """Starts the collector again after the first invocation (a no-op afterwards and outside Lambda).
    Cyclic garbage made during init stays frozen: it is made once per environment, not per invocation."""
    global _paused
    if _paused:
        _paused = False
        _gc.freeze()
        _gc.enable()
