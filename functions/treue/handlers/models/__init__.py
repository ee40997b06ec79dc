"""Response models of the partner API (what partners code against; not storage models), one module per
area, so a function imports only the models of its routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A response model whose validator and serializer are built when first used, not at import."""

    model_config = ConfigDict(defer_build=True)
