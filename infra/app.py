"""CDK app entry point: ``python -m infra.app`` (what ``make synth`` and cdk.json run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stack import TreueStack

STACK_NAME = "Treue"


ROOT = Path(__file__).resolve().parent.parent


def check_catalog() -> None:
    """A broken catalog file fails synth with the file, the item and the field."""
    sys.path.insert(0, str(ROOT / "functions"))
    from treue.logic.catalog import CatalogError, load_dir

    try:
        load_dir(ROOT / "catalog")
    except CatalogError as err:
        raise SystemExit(f"catalog: {err}") from err


def check_docs_ui() -> None:
    """The Docs function serves the API reference page's Swagger UI from its code: without it, no synth."""
    from infra.components import DOCS_UI

    if not DOCS_UI.exists():
        raise SystemExit(f"{DOCS_UI.relative_to(ROOT)} is missing (the API reference page at /docs needs it): "
                         "run `make synth`, which installs it from web/package-lock.json with npm")


def build(outdir: str | None = None) -> cdk.App:
    check_catalog()
    check_docs_ui()
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR", "cdk.out"))
    TreueStack(app, STACK_NAME, description="Treue: rewards and payouts pipeline")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build().synth()


if __name__ == "__main__":
    main()
