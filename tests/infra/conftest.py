"""The synthesized template as JSON, for the template assertions of this folder."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def template(synthesized):
    return json.loads(synthesized.read_text())


def of_type(template: dict, kind: str) -> dict[str, dict]:
    """The template's resources of one CloudFormation type, by logical id."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}
