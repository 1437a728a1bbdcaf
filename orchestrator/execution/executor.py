"""Carrying out one chat request: route, try the chain's models, settle, publish.

`execute` runs one step of a request's fallback chain inside the Celery task. It returns
None when the request is finished (its answer or its error published), or a `Retry` that
the task turns into `self.retry()`: the same task id, the chain in its arguments, and the
backoff (or Retry-After) as the countdown. What to do after an error is decided by
orchestrator/core/retry_policy.py; circuits and statistics are recorded after every attempt.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass

from orchestrator.runtime import logs
from orchestrator.store.batches import CANCELLED
from orchestrator.store.budgets import Charge
from orchestrator.core.catalog import ModelCapabilities
from orchestrator.store.circuits import OPEN
from orchestrator.core.payloads import chat_request, new_messages
from orchestrator.store.provider_limits import BATCH, CHAT, MARGIN
from orchestrator.core.types import ChatRequest, ChatResponse, Message, StreamDelta, Usage
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.store.connection import RoundTrip
from orchestrator.core.retry_policy import Chain, fall_over, next_step
from orchestrator.core.router import NoSuitableModel
from orchestrator.runtime.services import Services
from orchestrator.store.stats import Outcome
from orchestrator.store.users import ADMIN_ID, User
from orchestrator.core.strategies import RoutingStrategy
from orchestrator.execution import accounting

log = logging.getLogger(__name__)

TERMINAL = ("completed", "failed", "cancelled")
RESERVATION_GRACE = 60.0
LIMITED = "rate_limit_wait"  # an attempt skipped: the model's rate limit has no slot within reach


@dataclass(frozen=True)
class Retry:
    chain: dict
    delay: float
    slot: dict | None = None  # a provider-limit slot booked for the next run: {"model", "lane", "booking"}


def _error(status: int, code: str, message: str, details: dict | None = None) -> dict:
    return {"status": status, "code": code, "message": message, "details": details or {}}


@dataclass(frozen=True)
class _Inputs:
    """What a run reads before it calls anyone: the request's status (before this run marked
    it running; None for a batch item, which _begin_item marked), its conversation so far
    and, on the request's first run, what routing takes from Redis."""

    status: str | None = None
    history: tuple[Message, ...] = ()
    user: User | None = None
    states: dict[str, str] = dataclasses.field(default_factory=dict)
    usage: tuple[float, float] = (0.0, 0.0)  # this month's (spent, reserved), with cost tracking on
    observations: dict = dataclasses.field(default_factory=dict)


def execute(
    services: Services, request_id: str, payload: dict, chain_state: dict | None = None, slot: dict | None = None
) -> Retry | None:
    store = services.requests
    if payload.get("batch") and not _begin_item(services, request_id, payload, chain_state):
        return None
    try:
        inputs = _read_inputs(services, request_id, payload, first_run=chain_state is None)
        if inputs.status in TERMINAL:
            log.info("request %s already finished; redelivery ignored", request_id)
            return None
        request = chat_request(payload, services.settings, inputs.history)
        if chain_state is None:
            chain = _start(services, request_id, payload, request, inputs)
            if chain is None:
                return None
        else:
            chain = Chain.from_dict(chain_state)
        return _run(services, request_id, payload, request, chain, slot, inputs.states)
    except Exception:
        log.exception("request %s failed inside the worker", request_id)
        store.fail(request_id, _error(500, "internal_error", "The worker failed while handling this request."),
                   _settlement(services, payload, request_id))
        return None


def _read_inputs(services: Services, request_id: str, payload: dict, first_run: bool) -> _Inputs:
    """One round trip: each Redis read is a wait for the first token. A chat request whose
    record is gone (expired) still runs: its caller reads the answer from the event stream."""
    trip = RoundTrip(services.redis)
    owner = payload.get("owner") or ADMIN_ID
    known, reads = {}, {}
    if payload.get("conversation_id"):
        reads["history"] = services.conversations.history_in(trip, owner, payload["conversation_id"])
    if not payload.get("batch"):
        requests = services.requests
        reads["status"] = (requests.start_in if first_run else requests.status_in)(trip, request_id)
    if first_run:
        pairs = [(m.model_name, m.provider) for m in services.catalog]
        if owner == ADMIN_ID:
            known["user"] = services.users.admin
        else:
            reads["user"] = services.users.get_in(trip, owner)
        reads["states"] = services.circuits.states_in(trip, pairs)
        if services.settings.cost_tracking_enabled:
            reads["usage"] = services.budgets.usage_in(trip, owner)
        reads["observations"] = services.stats.observations_in(trip, [m for m, _ in pairs])
    trip.run()
    return _Inputs(**known, **{name: read() for name, read in reads.items()})


def _begin_item(services: Services, request_id: str, payload: dict, chain_state: dict | None) -> bool:
    """Whether a batch item goes on. Its first run marks it running (and its batch with it),
    unless the batch was cancelled first: then it ends cancelled without calling anyone.
    An item waiting for a rate-limit slot, no provider called yet, is cancelled too; one that
    has called a provider (or may have: a redelivery after a crash) finishes."""
    may_cancel = chain_state is not None and not chain_state.get("attempts")
    state = services.requests.begin_item(request_id, CANCELLED, may_cancel)
    if state == "cancel":
        services.requests.cancel_item(request_id, CANCELLED, _settlement(services, payload, request_id))
    elif state != "run":
        log.info("batch item %s not run: %s", request_id, state)
    return state == "run"


def _start(services: Services, request_id: str, payload: dict, request: ChatRequest, inputs: _Inputs) -> Chain | None:
    """Route the request, reserve its worst case and build its chain; None when no model
    can take it (the error is then published)."""
    catalog, settings = services.catalog, services.settings
    owner = payload.get("owner") or ADMIN_ID
    user = inputs.user
    limit = user.monthly_budget if user else settings.monthly_cost_limit
    tracking = settings.cost_tracking_enabled
    preferences, feedback_quality = accounting.routing_inputs(services, owner, user, payload.get("strategy"))
    remaining = max(0.0, limit - sum(inputs.usage)) if tracking else None
    try:
        decision = services.router.route(
            request,
            payload.get("strategy") or RoutingStrategy.BALANCED.value,
            pinned=payload.get("model") or (payload.get("models") or [None])[0],
            budget_limit=payload.get("budget_limit") if tracking else None,
            budget_remaining=remaining,
            preferences=preferences,
            observations=inputs.observations,
            unavailable={m for m, state in inputs.states.items() if state == OPEN},
            feedback_quality=feedback_quality,
        )
    except NoSuitableModel as exc:
        services.requests.fail(request_id, _error(exc.http_status, "no_suitable_model", str(exc), {"reason": exc.reason}))
        if exc.reason == "budget" and remaining is not None and remaining < (payload.get("budget_limit") or limit):
            accounting.after_refusal(services, payload, limit)
        return None
    deadline = payload.get("deadline") or time.time() + settings.request_timeout
    if payload.get("models"):  # an explicit list of models is the chain, in the caller's order
        decision.fallback_models = [(catalog.get(m).provider, m) for m in payload["models"][1:]]
    chain = Chain(models=decision.models[: settings.max_models_per_request], deadline=deadline,
                  decision=decision.as_dict())
    # The reservation and a stream's decision go in one round trip: when concurrent requests
    # took what was left first, the 402 follows the decision on the stream.
    trip, reserved = RoundTrip(services.redis), None
    if tracking:
        # The worst case of the chain's priciest model is held until the request settles. A task
        # redelivered after a crash finds its reservation gone at the deadline, not before.
        worst = max(catalog.get(m).worst_case_cost(decision.analysis.input_tokens, request.max_tokens)
                    for m in chain.models)
        reserved = services.budgets.reserve_in(trip, owner, limit, request_id, worst, deadline + RESERVATION_GRACE)
    if payload.get("stream"):
        services.requests.publish_in(trip, request_id, "decision", {"request_id": request_id, **chain.decision})
    trip.run()
    if reserved is not None and not reserved():
        services.requests.fail(request_id, _error(
            402, "budget_exceeded",
            f"No suitable models available for this request: its worst case (${worst:.6f}) is more than what is "
            "left of this month's budget after the requests in flight. Lower max_tokens or raise the budget.",
        ))
        accounting.after_refusal(services, payload, limit)
        return None
    return chain


def _run(
    services: Services, request_id: str, payload: dict, request: ChatRequest, chain: Chain, slot: dict | None = None,
    states: dict[str, str] | None = None,
) -> Retry | None:
    """Try the chain's models from its current one; at most one provider call, so `states`
    (the circuits' as this run read them, when it did) stay fresh for the whole run."""
    store, catalog = services.requests, services.catalog
    on_delta = _Publisher(services, request_id, chain) if payload.get("stream") else None
    while True:
        remaining = chain.deadline - time.time()
        if remaining <= 0:
            store.fail(request_id, _exhausted(chain, 504, "gateway_timeout", "the request's time budget ran out"),
                       _settlement(services, payload, request_id))
            return None
        model = catalog.get(chain.current)
        skipped = _skip_reason(services, chain, model, states or {})
        if skipped:
            chain.record(model.model_name, model.provider, skipped, 0.0)
            if fall_over(chain).give_up:
                store.fail(request_id, _cannot_finish(chain), _settlement(services, payload, request_id))
                return None
            continue
        if model.limits is not None:
            turn = _provider_slot(services, request_id, payload, request, model, chain, slot, remaining)
            slot = None  # a booked slot serves one call
            if isinstance(turn, Retry):
                return turn
            if not turn:  # no slot within reach of this chat request: the next model
                chain.record(model.model_name, model.provider, LIMITED, 0.0)
                if fall_over(chain).give_up:
                    store.fail(request_id, _exhausted(chain, 503, "rate_limited",
                                                      "every model of the chain is at its rate limit"),
                               _settlement(services, payload, request_id))
                    return None
                continue
        started = time.monotonic()
        try:
            response = call_model(services, model, _attempt_request(request, model, chain),
                                  _read_timeout(services, model, payload, remaining), chain.deadline, on_delta)
        except Cancelled:
            _settle_cancelled(services, request_id, payload, model, request, chain, time.monotonic() - started)
            return None
        except ProviderError as exc:
            duration = time.monotonic() - started
            chain.record(model.model_name, model.provider, exc, duration)
            _observe(services, model, exc, duration, fallback=chain.index > 0)
            step = next_step(chain, exc, catalog, time.time(), services.settings.retry_after_limit)
            if step.give_up:
                error = _cannot_finish(chain) if chain.partial and exc.kind.policy.fallback else _exhausted(
                    chain, exc.kind.policy.http_status, exc.kind.value, f"{exc.provider} {exc.model}: {exc.message}")
                store.fail(request_id, error, _settlement(services, payload, request_id))
                return None
            store.save_chain(request_id, chain.as_dict())
            return Retry(chain.as_dict(), step.delay)
        chain.record(model.model_name, model.provider, None, response.latency)
        cost = model.cost(response.usage) if services.settings.cost_tracking_enabled else 0.0
        _observe(services, model, None, response.latency, response, cost, fallback=chain.index > 0)
        if on_delta is not None:
            response = dataclasses.replace(response, content=chain.partial)
        _publish(services, request_id, payload, chain, response, cost)
        return None


def _provider_slot(
    services: Services, request_id: str, payload: dict, request: ChatRequest, model: ModelCapabilities, chain: Chain,
    slot: dict | None, remaining: float,
) -> Retry | bool:
    """A slot under the model's rate limits (orchestrator/store/provider_limits.py) for this call:
    True to call now; a Retry to wait for a booked slot, or for one to come within reach;
    False when a chat request finds none it could wait for (it falls over to the next model).
    A batch item always waits: it never fails for a limit, and its time budget does not run
    while it waits. Chat waits at most RETRY_AFTER_LIMIT, or its remaining time on the last
    model of its chain."""
    limits = services.provider_limits
    # Build the provider's client first (once per process): the slot is counted from now, and
    # the call should reach the provider right after, not after a client's construction.
    try:
        services.providers.for_model(model)
    except ProviderError:
        pass  # the call itself meets the error and the chain handles it
    if slot and slot["model"] == model.model_name and limits.claim(model.model_name, slot["lane"], slot["booking"]):
        return True
    tokens = _estimated_tokens(request)
    if payload.get("batch"):
        # Book up to one window ahead, and well within the visibility timeout: a task waiting
        # longer than that for its countdown would be delivered a second time meanwhile.
        horizon = min(limits.lanes(model)[BATCH].window + MARGIN, services.settings.visibility_timeout / 2)
        grant = limits.acquire(model, BATCH, tokens, horizon, request_id)
        if grant.booked and grant.delay == 0:
            return True
        # Not booked: come back when the next free slot may be within the horizon.
        delay = grant.delay if grant.booked else max(grant.delay - horizon, horizon / 2) + random.uniform(0, horizon / 4)
        chain.deadline += delay
        return Retry(chain.as_dict(), delay, _slot(model, grant) if grant.booked else None)
    own = limits.acquire(model, CHAT, tokens, 0.0, request_id)
    if own is not None and own.booked:
        return True
    reach = remaining if chain.is_last else min(services.settings.retry_after_limit, remaining)
    grant = limits.acquire(model, BATCH, tokens, max(0.0, reach - 0.5), request_id)
    if not grant.booked:
        return False
    if grant.delay == 0:
        return True
    return Retry(chain.as_dict(), grant.delay, _slot(model, grant))


def _slot(model: ModelCapabilities, grant) -> dict:
    return {"model": model.model_name, "lane": grant.lane, "booking": grant.booking}


def _estimated_tokens(request: ChatRequest) -> int:
    """What a call counts against a tokens-per-minute limit before it is made: the prompt at
    four characters a token, and every output token it may write (as OpenAI counts it)."""
    text = sum(len(m.content) for m in request.messages) + len(request.system_prompt or "")
    return (text + 3) // 4 + request.max_tokens


class Cancelled(Exception):
    """The caller went away: stop generating."""


class _Publisher:
    """Streams an attempt's text to the caller as it comes, and notices a caller who left."""

    CANCEL_CHECK = 0.25  # seconds between two looks at the cancel flag

    def __init__(self, services: Services, request_id: str, chain: Chain):
        self.store, self.request_id, self.chain = services.requests, request_id, chain
        self.checked = time.monotonic()

    def __call__(self, text: str) -> None:
        self.store.publish(self.request_id, "chunk", {"text": text})
        self.chain.partial += text
        if time.monotonic() - self.checked > self.CANCEL_CHECK:
            self.checked = time.monotonic()
            if self.store.cancelled(self.request_id):
                raise Cancelled


def _skip_reason(services: Services, chain: Chain, model: ModelCapabilities, states: dict[str, str]) -> str | None:
    """Why this model cannot take the attempt: an open circuit, or an answer to continue
    that it cannot be given as a prefill."""
    if chain.partial and not model.supports_assistant_prefill:
        return "cannot_continue"
    if not _may_call(services, chain, model, states.get(model.model_name)):
        return "circuit_open"
    return None


def _attempt_request(request: ChatRequest, model: ModelCapabilities, chain: Chain) -> ChatRequest:
    """The request for this attempt: the model's name, the text already streamed as an
    assistant prefill (so the model continues the answer instead of starting another), and
    the request id the task carries, for the provider's logs."""
    messages = request.messages + ((Message("assistant", chain.partial),) if chain.partial else ())
    return dataclasses.replace(request, model=model.model_name, messages=messages, request_id=logs.REQUEST_ID.get())


def _cannot_finish(chain: Chain) -> dict:
    if chain.partial:
        return _exhausted(chain, 502, "incomplete_answer",
                          f"the answer was cut after {len(chain.partial)} characters and no remaining model "
                          "can continue it; what was sent is incomplete")
    return _exhausted(chain, 503, "no_model_available", "every model of the chain is unavailable")


def _settle_cancelled(
    services: Services, request_id: str, payload: dict, model: ModelCapabilities, request: ChatRequest, chain: Chain,
    duration: float,
) -> None:
    """The caller left: the upstream call is closed, and only what was generated is paid."""
    usage = _estimated_usage(request, [chain.partial])
    cost = model.cost(usage) if services.settings.cost_tracking_enabled else 0.0
    chain.record(model.model_name, model.provider, "cancelled", duration)
    services.stats.record(Outcome(model=model.model_name, provider=model.provider, error="cancelled",
                                  latency=duration, input_tokens=usage.input_tokens,
                                  output_tokens=usage.output_tokens, cost=cost))
    if services.requests.fail(request_id, _exhausted(chain, 499, "cancelled", "the caller closed the connection"),
                              _settlement(services, payload, request_id, cost)):
        accounting.after_settlement(services, payload, chain, model.model_name, cost, usage.input_tokens,
                                    usage.output_tokens)


def _may_call(services: Services, chain: Chain, model: ModelCapabilities, state: str | None) -> bool:
    """Whether the model's circuit lets this attempt through (`state` when this run has just
    read it). The last model of a chain is always tried: when every model is open, the best
    one is still worth an attempt."""
    if chain.is_last:
        return True
    state = state or services.circuits.states([(model.model_name, model.provider)])[model.model_name]
    if state == "probe":
        return services.circuits.try_probe(model.model_name, model.provider)
    return state == "closed"


def _read_timeout(services: Services, model: ModelCapabilities, payload: dict, remaining: float) -> float:
    """How long the provider may stay silent: before its first token or between two chunks."""
    silence = payload.get("first_token_timeout") or model.first_token_timeout or services.settings.first_token_timeout
    return max(0.05, min(silence, remaining))


def call_model(
    services: Services, model: ModelCapabilities, request: ChatRequest, read_timeout: float, deadline: float,
    on_delta=None,
) -> ChatResponse:
    """One attempt. A model that streams is called streaming even when the caller waits for
    the whole answer: that is how a missing first token or a stalled stream is noticed.
    `on_delta` receives each piece of text as it arrives."""
    provider = services.providers.for_model(model)
    if not model.supports_streaming:
        response = provider.complete(request, timeout=read_timeout)
        if on_delta is not None:
            on_delta(response.content)
        return response
    started = time.monotonic()
    first_token, parts, end = None, [], None
    events = provider.stream(request, timeout=read_timeout)
    try:
        for event in events:
            if isinstance(event, StreamDelta):
                first_token = first_token or time.monotonic() - started
                parts.append(event.text)
                if on_delta is not None:
                    on_delta(event.text)
            else:
                end = event
            if time.time() > deadline:
                raise ProviderError(ErrorKind.TIMEOUT, "the answer did not finish within the request's time budget",
                                    provider=model.provider, model=model.model_name)
    finally:
        events.close()  # cancels the upstream call when we stop early
    latency = time.monotonic() - started
    return ChatResponse(
        content="".join(parts),
        finish_reason=end.finish_reason,
        usage=end.usage if end.usage.input_tokens or end.usage.output_tokens else _estimated_usage(request, parts),
        model=model.model_name,
        provider=model.provider,
        provider_request_id=end.provider_request_id,
        latency=latency,
        time_to_first_token=first_token if first_token is not None else latency,
        sandbox=provider.sandbox,
    )


def _estimated_usage(request: ChatRequest, parts: list[str]) -> Usage:
    """For a server whose stream reports no usage: about four characters a token."""
    text = sum(len(m.content) for m in request.messages) + len(request.system_prompt or "")
    return Usage(input_tokens=(text + 3) // 4, output_tokens=(sum(map(len, parts)) + 3) // 4)


def _observe(
    services: Services, model: ModelCapabilities, error: ProviderError | None, duration: float,
    response: ChatResponse | None = None, cost: float = 0.0, fallback: bool = False,
) -> None:
    """Statistics and circuits learn from every attempt (one round trip)."""
    kind = error.kind if error else None
    pipe = services.redis.pipeline(transaction=False)
    services.stats.record(Outcome(
        model=model.model_name, provider=model.provider, error=kind.value if kind else None, latency=duration,
        ttft=response.time_to_first_token if response else None,
        input_tokens=response.usage.input_tokens if response else 0,
        output_tokens=response.usage.output_tokens if response else 0,
        cost=cost, fallback=fallback,
    ), pipe=pipe)
    # Refusals and bad requests say nothing of a model's health; everything else does.
    if kind is None or kind.policy.fallback:
        unavailable = kind in (ErrorKind.AUTH, ErrorKind.NOT_FOUND)
        services.circuits.record(model.model_name, model.provider, success=kind is None, force_open=unavailable,
                                 pipe=pipe)
        if unavailable:
            log.warning("ALERT model %s marked unavailable: %s", model.model_name, error.message)
    replies = pipe.execute()
    if kind is not None and len(replies) > 1 and replies[1]:  # a circuit opened just now
        accounting.circuits_opened(services, model.model_name, model.provider, replies[1], kind.value)


def _settlement(services: Services, payload: dict, request_id: str, cost: float = 0.0) -> Charge | None:
    """The request's reservation released and `cost` spent, when costs are tracked."""
    if not services.settings.cost_tracking_enabled:
        return None
    return services.budgets.charge(payload.get("owner") or ADMIN_ID, request_id, cost)


def _exhausted(chain: Chain, status: int, code: str, message: str) -> dict:
    tried = len(chain.attempts)
    text = f"{message} (after {tried} attempt{'s' if tried != 1 else ''})" if tried else message
    return _error(status, code, text, {"attempts": chain.attempts})


def _publish(
    services: Services, request_id: str, payload: dict, chain: Chain, response: ChatResponse, cost: float
) -> None:
    result = {
        "request_id": request_id,
        "response": {
            "content": response.content,
            "cost": round(cost, 6),
            "usage": response.usage.as_dict(),
            "model": response.model,
            "provider": response.provider,
            "finish_reason": response.finish_reason,
            "latency": round(response.latency, 4),
            "time_to_first_token": round(response.time_to_first_token, 4),
            "provider_request_id": response.provider_request_id,
            "sandbox": response.sandbox,
        },
        "model_used": response.model,
        "routing_decision": chain.decision,
        "attempts": chain.attempts,
    }
    conversation_id = payload.get("conversation_id")
    turn = None
    if conversation_id:
        result["conversation_id"] = conversation_id
        turn = services.conversations.turn(payload.get("owner") or ADMIN_ID, conversation_id, new_messages(payload),
                                           response.content)
    if services.requests.complete(request_id, result, turn, _settlement(services, payload, request_id, cost)):
        accounting.after_settlement(services, payload, chain, response.model, cost, response.usage.input_tokens,
                                    response.usage.output_tokens)
