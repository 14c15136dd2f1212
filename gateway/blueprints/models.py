"""GET /api/v1/models and /models/{id}: the configured models, with prices where the catalog has them.

A request carrying anthropic-version (the anthropic SDKs, Claude Code's model discovery) gets
Anthropic's shapes: {"data": [...], "has_more", "first_id", "last_id"} and {"type": "model", …}.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

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


# Anthropic's model objects carry a release date; the gateway knows none, and the SDK's docs allow
# the epoch for "unknown".
UNKNOWN_DATE = "1970-01-01T00:00:00Z"


def _anthropic_model(model_id: str, target: Target) -> dict[str, Any]:
    """Return Anthropic's model object (anthropic-sdk-python types/model_info.py)."""
    name = model_id if model_id == target.public_id else f"{model_id} ({target.public_id})"
    out: dict[str, Any] = {
        "type": "model",
        "id": model_id,
        "display_name": name,
        "created_at": UNKNOWN_DATE,
        "lifecycle": "active",
    }
    if target.model.context_length:
        out["max_input_tokens"] = target.model.context_length
    if target.model.max_output_tokens:
        out["max_tokens"] = target.model.max_output_tokens
    return out


def _anthropic_client() -> bool:
    return "anthropic-version" in request.headers


@bp.get("/models")
def list_models() -> dict[str, Any]:
    principal = authenticate()
    catalog = services().catalog
    models = [(t.public_id, t) for t in catalog.targets.values() if principal.may_use(t.public_id)]
    models += [
        (alias, catalog.targets[public_id])
        for alias, public_id in catalog.aliases.items()
        if principal.may_use(public_id)
    ]
    if _anthropic_client():
        # Every model on one page: has_more false ends the SDK's paging whatever limit it asked for.
        data = [_anthropic_model(model_id, t) for model_id, t in models]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return {"data": data, "has_more": False, "first_id": first, "last_id": last}
    return {"object": "list", "data": [_model_object(model_id, t) for model_id, t in models]}


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
    return _anthropic_model(model_id, target) if _anthropic_client() else _model_object(model_id, target)
