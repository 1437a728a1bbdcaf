"""GET /metrics: Prometheus text format, from Redis (orchestrator/runtime/metrics.py), outside
the OpenAPI spec (it is not JSON). Models, circuits, queues and workers need no key; the
per-user budget series only come to a scrape that sends the admin key (Authorization:
Bearer ADMIN_API_KEY), so that an anonymous scrape lists no user ids."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orchestrator.runtime.metrics import RedisCollector, registry
from orchestrator.runtime.services import Services
from workers import dispatch

blp = Blueprint("metrics", __name__)


def _registry(services: Services, per_user: bool):
    prefix = services.settings.redis_prefix
    return registry(RedisCollector(
        services.redis, prefix, services.catalog, services.stats, services.circuits, services.fleet, services.users,
        services.budgets, lambda: dispatch.queue_waiting(services.broker, prefix), per_user=per_user,
    ))


def _from_admin(services: Services) -> bool:
    admin = services.settings.admin_api_key
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(admin) and hmac.compare_digest(sent.encode(), admin.encode())


@blp.get("/metrics")
def metrics() -> Response:
    extensions = current_app.extensions
    services = extensions["orchestrator"]
    per_user = _from_admin(services)
    name = f"orchestrator_metrics_{'admin' if per_user else 'public'}"
    if name not in extensions:
        extensions[name] = _registry(services, per_user)
    return Response(generate_latest(extensions[name]), mimetype=CONTENT_TYPE_LATEST)
