"""Lambda handlers: one module per function."""

from __future__ import annotations

import importlib
from types import ModuleType

# The modules behind the partner API, each with its resolver ``app`` and its route → scopes ``SCOPES``
API_MODULES = ("enrollment", "accrual", "catalog", "orders", "vouchers", "finance", "rewards", "batches",
               "webhooks", "queue_senders")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"treue.handlers.{name}") for name in API_MODULES]


def api_routes() -> set[tuple[str, str]]:
    """Every (method, resource) the API handlers serve."""
    return {route for module in api_modules() for route in module.SCOPES}
