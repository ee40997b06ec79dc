"""The README's receiver snippet (```python under Webhooks), run against signatures Treue's sender makes."""

import re
import time
from pathlib import Path

import pytest

from treue.logic import webhooks

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def readme_verify():
    section = README.read_text().split("### Webhooks", 1)[1].split("\n## ", 1)[0]
    snippets = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(snippets) == 1, "one receiver snippet under Webhooks"
    namespace: dict = {}
    exec(compile(snippets[0], f"{README.name} (Webhooks)", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


def test_the_readme_receiver_accepts_what_treue_signs(readme_verify):
    body = b'{"id": "evt_1", "type": "order.completed", "created_at": "2026-12-01T10:00:00.000Z", "data": {}}'
    now = int(time.time())
    header = webhooks.signature_header(["whsec_current"], body, now)
    assert readme_verify(header, body, "whsec_current")
    rotating = webhooks.signature_header(["whsec_new", "whsec_old"], body, now)  # a second v1= while rotating
    assert readme_verify(rotating, body, "whsec_new") and readme_verify(rotating, body, "whsec_old")


def test_the_readme_receiver_refuses_what_it_should(readme_verify):
    body = b'{"id": "evt_1"}'
    now = int(time.time())
    header = webhooks.signature_header(["whsec_current"], body, now)
    assert not readme_verify(header, body + b" ", "whsec_current")  # the raw body, byte for byte
    assert not readme_verify(header, body, "whsec_other")
    assert not readme_verify(webhooks.signature_header(["whsec_current"], body, now - 301), body, "whsec_current")
    assert not readme_verify(f"t={now},{header}", body, "whsec_current")  # two time stamps
    assert not readme_verify(header.split(",", 1)[1], body, "whsec_current")  # none
    for header_ in ("", "garbage", f"t=abc,v1={webhooks.sign('whsec_current', body, now)}"):
        assert not readme_verify(header_, body, "whsec_current")
    # the snippet and Treue's own verify agree
    assert webhooks.verify(header, body, "whsec_current") and not webhooks.verify(header, body, "whsec_other")
