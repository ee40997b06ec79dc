"""CDK app entry point: ``python -m infra.app`` (what ``make synth`` and cdk.json run)."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stack import TreueStack

STACK_NAME = "Treue"


def build(outdir: str | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR", "cdk.out"))
    TreueStack(app, STACK_NAME, description="Treue: rewards and payouts pipeline")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build().synth()


if __name__ == "__main__":
    main()
