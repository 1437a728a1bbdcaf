"""Health: is the gateway able to serve (Redis answers, at least one worker alive)?"""

from __future__ import annotations

import time

import redis
from flask.views import MethodView
from flask_smorest import Blueprint

from api import services
from api.schemas import HealthSchema

blp = Blueprint("health", __name__, description="Orchestrator health")


def _redis_check(client: redis.Redis) -> tuple[dict, str | None]:
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}, f"Redis unreachable: {exc}"
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}, None


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Not able to serve; `reasons` says why")
    def get(self):
        """Check orchestrator health: Redis and the worker fleet."""
        svc = services()
        redis_status, problem = _redis_check(svc.redis)
        reasons = [problem] if problem else []
        workers = {"alive": [], "count": 0}
        if not problem:
            alive = svc.fleet.alive()
            workers = {"alive": alive, "count": len(alive)}
            if not alive:
                reasons.append("No worker is running: start one with `orchestrator worker`.")
        body = {
            "status": "unhealthy" if reasons else "healthy",
            "reasons": reasons,
            "redis": redis_status,
            "workers": workers,
            "timestamp": time.time(),
        }
        return body, 503 if reasons else 200
