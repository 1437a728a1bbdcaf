"""GET /metrics: Prometheus text format, from Redis (orchestrator/runtime/metrics.py); no key needed,
outside the OpenAPI spec (it is not JSON)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchestrator.runtime.metrics import RedisCollector, registry
from orchestrator.runtime.services import Services
from workers import dispatch

blp = Blueprint("metrics", __name__)


def _registry(services: Services):
    prefix = services.settings.redis_prefix
    return registry(RedisCollector(
        services.redis, prefix, services.catalog, services.stats, services.circuits, services.fleet, services.users,
        services.budgets, lambda: dispatch.queue_depths(services.redis, prefix),
    ))


@blp.get("/metrics")
def metrics() -> Response:
    extensions = current_app.extensions
    if "orchestrator_metrics" not in extensions:
        extensions["orchestrator_metrics"] = _registry(extensions["orchestrator"])
    return Response(generate_latest(extensions["orchestrator_metrics"]), mimetype=CONTENT_TYPE_LATEST)
