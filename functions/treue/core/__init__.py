"""The leaf layer every other layer may import: domain value types and pure helpers (no I/O, no AWS).

Ids, time stamps, ledger postings, budget movements, programs, API keys and audit records are what
handlers, logic and store pass between them, so they live below all three. A module here imports
nothing of treue but ``treue.errors`` and other modules here (``tests/unit/test_import_graph.py``).
"""
