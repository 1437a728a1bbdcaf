"""Carrying out one chat request: route, call the provider, settle, publish the answer."""

from __future__ import annotations

import dataclasses
import logging

from orchestrator.payloads import chat_request, new_messages
from orchestrator.providers.base import ChatResponse
from orchestrator.providers.errors import ProviderError
from orchestrator.router import NoSuitableModel
from orchestrator.services import Services
from orchestrator.strategies import RoutingStrategy

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, details: dict | None = None) -> dict:
    return {"status": status, "code": code, "message": message, "details": details or {}}


def execute(services: Services, request_id: str, payload: dict) -> None:
    store = services.requests
    if store.status(request_id) in ("completed", "failed"):
        log.info("request %s already finished; redelivery ignored", request_id)
        return
    store.mark_running(request_id)
    try:
        result, response = _answer(services, payload)
    except NoSuitableModel as exc:
        store.fail(request_id, _error(exc.http_status, "no_suitable_model", str(exc), {"reason": exc.reason}))
    except ProviderError as exc:
        status = exc.kind.policy.http_status
        store.fail(request_id, _error(status, exc.kind.value, f"{exc.provider} {exc.model}: {exc.message}", exc.as_dict()))
    except Exception:
        log.exception("request %s failed inside the worker", request_id)
        store.fail(request_id, _error(500, "internal_error", "The worker failed while handling this request."))
    else:
        result["request_id"] = request_id
        conversation_id = payload.get("conversation_id")
        turn = None
        if conversation_id:
            result["conversation_id"] = conversation_id
            turn = services.conversations.turn(conversation_id, new_messages(payload), response.content)
        store.complete(request_id, result, turn)


def _answer(services: Services, payload: dict) -> tuple[dict, ChatResponse]:
    conversation_id = payload.get("conversation_id")
    earlier = services.conversations.history(conversation_id) if conversation_id else ()
    request = chat_request(payload, services.settings, earlier)
    decision = services.router.route(
        request,
        payload.get("strategy") or RoutingStrategy.BALANCED.value,
        pinned=payload.get("model"),
        budget_limit=payload.get("budget_limit"),
    )
    model = services.catalog.get(decision.chosen_model)
    provider = services.providers.for_model(model)
    response = provider.complete(
        dataclasses.replace(request, model=model.model_name), timeout=services.settings.request_timeout
    )
    cost = model.cost(response.usage) if services.settings.cost_tracking_enabled else 0.0
    result = {
        "response": {
            "content": response.content,
            "cost": round(cost, 6),
            "usage": response.usage.as_dict(),
            "model": response.model,
            "provider": response.provider,
            "finish_reason": response.finish_reason,
            "latency": round(response.latency, 4),
            "provider_request_id": response.provider_request_id,
            "sandbox": response.sandbox,
        },
        "model_used": response.model,
        "routing_decision": decision.as_dict(),
        "attempts": [{"model": response.model, "provider": response.provider, "error": None, "duration": round(response.latency, 4)}],
    }
    return result, response
