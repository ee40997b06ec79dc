"""Lambda handlers: one module per function."""

from __future__ import annotations

import importlib
from types import ModuleType

from treue.routes import ROUTES

# The functions behind the partner API (the route table's ``function``) and their module here, each with its
# ``app`` (``treue.handlers.http.make_app``) and one function per route named as the route's ``handler``
API_FUNCTIONS = {
    "Enrollment": "enrollment",
    "Accrual": "accrual",
    "Catalog": "catalog",
    "Orders": "orders",
    "Vouchers": "vouchers",
    "Finance": "finance",
    "Rewards": "rewards",
    "Batches": "batches",
    "Webhooks": "webhooks",
    "QueueSenders": "queue_senders",
    "Program": "program",
    "Rules": "rules",
    "Segments": "segments",
    "Memberships": "memberships",
}
API_MODULES = tuple(API_FUNCTIONS.values())
# The public documentation function (the route table's "Docs" routes): no key, no resolver
DOCS_FUNCTION = ("Docs", "docs")


class LazyModule:
    """A module imported when one of its names is first read: a route's models or logic that only its own calls
    need (their validators are built on the route's first call), so they cost nothing at cold start."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, name: str) -> object:
        return getattr(importlib.import_module(self._name), name)


def module_of(function: str) -> ModuleType:
    """The handler module of a function of the route table."""
    name = DOCS_FUNCTION[1] if function == DOCS_FUNCTION[0] else API_FUNCTIONS[function]
    return importlib.import_module(f"treue.handlers.{name}")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"treue.handlers.{name}") for name in API_MODULES]


def api_routes() -> set[tuple[str, str]]:
    """Every (method, resource) the API handlers serve, from the route table (without the public docs)."""
    return {(r.method, r.path) for r in ROUTES if r.function in API_FUNCTIONS}
