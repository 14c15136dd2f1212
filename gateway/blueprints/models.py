"""GET /api/v1/models and /models/{id}: the configured models, with prices where the catalog has them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway.blueprints.auth import authenticate
from gateway.blueprints.services import services
from gateway.errors import ModelNotFoundError
from gateway.routing.catalog import Target

bp = Blueprint("models", __name__, url_prefix="/api/v1")


def _model_object(model_id: str, target: Target) -> dict[str, Any]:
    """Return OpenAI's model object, with prices and context length where the catalog knows them."""
    out: dict[str, Any] = {"id": model_id, "object": "model", "created": 0, "owned_by": target.provider.name}
    if model_id != target.public_id:
        out["alias_for"] = target.public_id
    model = target.model
    if model.priced:
        prices = {"input": str(model.input_price), "output": str(model.output_price)}
        if model.cached_input_price is not None:
            prices["cached_input"] = str(model.cached_input_price)
        if model.cache_write_price is not None:
            prices["cache_write"] = str(model.cache_write_price)
        out["pricing"] = dict(prices, unit="USD per million tokens")
    if model.context_length:
        out["context_length"] = model.context_length
    if model.max_output_tokens:
        out["max_output_tokens"] = model.max_output_tokens
    return out


@bp.get("/models")
def list_models() -> dict[str, Any]:
    principal = authenticate()
    catalog = services().catalog
    data = [_model_object(t.public_id, t) for t in catalog.targets.values() if principal.may_use(t.public_id)]
    for alias, public_id in catalog.aliases.items():
        if principal.may_use(public_id):
            data.append(_model_object(alias, catalog.targets[public_id]))
    return {"object": "list", "data": data}


# path, not string: openai-python ≥ 2.30 sends a '/' in an id as %2F, older ones sent it raw; the WSGI
# server decodes both to '/' before routing (docs/wire-formats.md#openai-model-ids-in-paths).
@bp.get("/models/<path:model_id>")
def retrieve_model(model_id: str) -> dict[str, Any]:
    principal = authenticate()
    catalog = services().catalog
    try:
        target = catalog.resolve(model_id)
    except ModelNotFoundError:
        target = None
    if target is None or not principal.may_use(target.public_id):
        raise ModelNotFoundError(
            f"The model `{model_id[:200]}` does not exist or you do not have access to it.", param="model"
        )
    return _model_object(model_id, target)
