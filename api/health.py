"""Health: is the gateway able to serve (Redis answers, at least one worker alive), and what
an operator wants to see beside it: each worker's answer to a Celery ping and its tasks in
hand (Celery inspect), each provider (sandbox or real, its circuit and its models'
circuits, the last error), the queues' depths, the streams open and the batches unfinished.

- GET /health: the details; 200 when serving, 503 with `reasons` when not. Open circuits
  and workers that do not answer a ping are `warnings`: the gateway still serves.
- GET /health/live: 200 while the process answers (a liveness probe: restart me if not).
- GET /health/ready: 200 when Redis answers and a worker is alive, else 503 (a readiness
  probe: send me traffic or not).
"""

from __future__ import annotations

import threading
import time

import kombu.exceptions
import marshmallow as ma
import redis
from flask.views import MethodView
from marshmallow import fields

from api import services
from api.errors import Blueprint
from api.event_stream import OpenStreams
from api.schemas import HealthSchema
from workers import dispatch

blp = Blueprint("health", __name__, description="Orchestrator health")


class HealthDetailsSchema(HealthSchema):
    warnings = fields.List(fields.String(), required=True, metadata={"description": "Serving, but worth a look"})
    providers = fields.Dict(required=True, metadata={"description": "Per provider: sandbox or real, its circuit, "
                                                     "its models' circuits and last errors"})
    queues = fields.Dict(required=True, metadata={"description": "Tasks waiting per queue and kombu priority "
                                                  "level (0 is served first)"})
    streams = fields.Dict(required=True, metadata={"description": "Streaming answers being followed now ('open')"})
    batches = fields.Dict(required=True, metadata={"description": "Batches not ended: how many 'queued', 'running'"})


class ProbeSchema(ma.Schema):
    status = fields.String(required=True)
    reasons = fields.List(fields.String(), required=True)


def _redis_check(client: redis.Redis) -> tuple[dict, str | None]:
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": type(exc).__name__}, f"Redis unreachable: {exc}"
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}, None


class _FleetAnswers:
    """The live workers' answers to a Celery ping and an inspect of their tasks in hand.

    Each broadcast holds one of the process's broker connections (shared with enqueueing)
    until the answers are in, so a process asks at most once every ANSWERS_TTL seconds,
    one caller at a time; the other /health calls reuse the last answers."""

    ANSWER_TIMEOUT = 0.5  # seconds each of the two broadcasts waits for answers
    ANSWERS_TTL = 5.0

    def __init__(self):
        self._lock = threading.Lock()
        self._last: tuple[float, tuple[str, ...], dict, list[str]] | None = None

    def get(self, alive: list[str]) -> tuple[dict, list[str]]:
        if not alive:
            return {}, []
        with self._lock:
            last = self._last
            if last is None or last[1] != tuple(alive) or time.monotonic() - last[0] > self.ANSWERS_TTL:
                last = self._last = (time.monotonic(), tuple(alive), *self._ask(alive))
            return last[2], last[3]

    def _ask(self, alive: list[str]) -> tuple[dict, list[str]]:
        timeout = self.ANSWER_TIMEOUT
        pongs, active = dispatch.ask_workers(alive, timeout)
        workers = {name: {"ping": name in pongs, "active_tasks": len(active[name]) if name in active else None}
                   for name in alive}
        warnings = [
            f"worker {name} did not answer a ping within {timeout:g}s (stuck or overloaded?)" if not answer["ping"]
            else f"worker {name} did not answer an inspect within {timeout:g}s (overloaded?)"
            for name, answer in workers.items() if answer["active_tasks"] is None
        ]
        return workers, warnings


_fleet_answers = _FleetAnswers()


def _serving() -> tuple[list[str], dict, dict]:
    svc = services()
    redis_status, problem = _redis_check(svc.redis)
    reasons = [problem] if problem else []
    if svc.broker is not svc.redis:  # BROKER_URL: the queues on a Redis of their own
        redis_status["broker"], broker_problem = _redis_check(svc.broker)
        if broker_problem:
            reasons.append(f"the broker's {broker_problem}")
    workers = {"alive": [], "count": 0}
    if not problem:
        alive = svc.fleet.alive()
        workers = {"alive": alive, "count": len(alive)}
        if not alive:
            reasons.append("No worker is running: start one with `orchestrator worker`.")
    return reasons, redis_status, workers


def _providers() -> tuple[dict, list[str]]:
    svc = services()
    catalog = svc.catalog
    pairs = [(m.model_name, m.provider) for m in catalog]
    states = svc.circuits.snapshot(pairs)
    read = svc.stats.totals([m for m, _ in pairs])
    providers, warnings = {}, []
    for name, config in catalog.providers.items():
        models = {}
        for model in (m for m in catalog if m.provider == name):
            averages = read[model.model_name]["averages"]
            models[model.model_name] = {
                "circuit": states.get(("model", model.model_name), "closed"),
                "last_error": averages.get("last_error"),
                "last_error_at": float(averages["last_error_at"]) if averages.get("last_error_at") else None,
            }
        if not models:
            reason = svc.providers.missing_credentials(config)
            if reason:
                providers[name] = {"kind": config.kind, "sandbox": False, "available": False, "reason": reason}
            continue
        last = max((m for m in models.values() if m["last_error_at"]), key=lambda m: m["last_error_at"], default=None)
        circuit = states.get(("provider", name), "closed")
        providers[name] = {
            "kind": config.kind,
            "sandbox": svc.providers.uses_sandbox(config),
            "circuit": circuit,
            "last_error": last["last_error"] if last else None,
            "last_error_at": last["last_error_at"] if last else None,
            "models": models,
        }
        if circuit != "closed":
            warnings.append(f"provider {name}: circuit {circuit}")
        warnings += [f"model {m}: circuit {d['circuit']}" for m, d in models.items() if d["circuit"] != "closed"]
    return providers, warnings


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthDetailsSchema)
    @blp.alt_response(503, schema=HealthDetailsSchema, description="Not able to serve; `reasons` says why")
    def get(self):
        """Check orchestrator health: Redis, the worker fleet, providers and queues."""
        reasons, redis_status, workers = _serving()
        providers, warnings, queues, streams, batches = {}, [], {}, {}, {}
        if redis_status["ok"]:
            svc = services()
            try:
                providers, warnings = _providers()
                queues = dispatch.queue_depths(svc.broker, svc.settings.redis_prefix)
                streams = {"open": OpenStreams(svc.redis, svc.settings.redis_prefix).count()}
                batches = svc.batches.unfinished()
                workers["answering"], silent = _fleet_answers.get(workers["alive"])
                warnings += silent
            except (redis.RedisError, kombu.exceptions.OperationalError) as exc:
                reasons.append(f"Redis unreachable: {exc}")
        body = {
            "status": "unhealthy" if reasons else "healthy",
            "reasons": reasons,
            "warnings": warnings,
            "redis": redis_status,
            "workers": workers,
            "providers": providers,
            "queues": queues,
            "streams": streams,
            "batches": batches,
            "timestamp": time.time(),
        }
        return body, 503 if reasons else 200


@blp.route("/health/live")
class Live(MethodView):
    @blp.response(200, ProbeSchema)
    def get(self):
        """Liveness: the process answers."""
        return {"status": "alive", "reasons": []}


@blp.route("/health/ready")
class Ready(MethodView):
    @blp.response(200, ProbeSchema)
    @blp.alt_response(503, schema=ProbeSchema, description="Not ready: Redis unreachable or no worker alive")
    def get(self):
        """Readiness: Redis answers and at least one worker is alive."""
        reasons, _, _ = _serving()
        return {"status": "not_ready" if reasons else "ready", "reasons": reasons}, 503 if reasons else 200
