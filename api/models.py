"""The model catalog as the router sees it, and where each model is served."""

from __future__ import annotations

import dataclasses

from flask.views import MethodView

from api import services
from api.errors import Blueprint
from api.schemas import CapabilitiesSchema

blp = Blueprint("models", __name__, description="Available models")


@blp.route("/capabilities")
class Capabilities(MethodView):
    @blp.response(200, CapabilitiesSchema)
    def get(self):
        """Get detailed information about available models: capabilities, prices, latency, quality."""
        svc = services()
        models = []
        for model in svc.catalog:
            provider = svc.catalog.provider_of(model)
            entry = dataclasses.asdict(model)
            entry["served_by"] = "sandbox" if svc.providers.uses_sandbox(provider) else "provider"
            entry["base_url"] = svc.providers.base_url(provider)
            models.append(entry)
        return {"models": models, "count": len(models), "unavailable": svc.unavailable}
