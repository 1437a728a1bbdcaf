"""One attempt: a model called (streaming whenever it can), its text published as it comes,
and what the attempt says of the model recorded in statistics and circuits."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import redis

from orchestrator.core.analysis import estimate_tokens
from orchestrator.core.catalog import EmbeddingModel, ModelCapabilities
from orchestrator.core.decision import Decision
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ChatRequest, ChatResponse, Message, StreamDelta, StreamEnd, Usage
from orchestrator.execution.accounting import Accounting
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.store.circuits import Circuits
from orchestrator.store.neighbourhood_quality import NeighbourhoodQuality
from orchestrator.store.requests import RequestStore
from orchestrator.store.stats import Outcome, Stats

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The caller went away: stop generating."""


class Publisher:
    """Streams an attempt's text to the caller as it comes, and notices a caller who left."""

    CANCEL_CHECK = 0.25  # seconds between two looks at the cancel flag

    def __init__(self, store: RequestStore, request_id: str, chain: Chain):
        self.store, self.request_id, self.chain = store, request_id, chain
        self.checked = time.monotonic()

    def __call__(self, text: str) -> None:
        self.store.publish_chunk(self.request_id, {"text": text, "model": self.chain.current})
        self.chain.partial += text
        if time.monotonic() - self.checked > self.CANCEL_CHECK:
            self.checked = time.monotonic()
            if self.store.cancelled(self.request_id):
                raise Cancelled


def prompt_tokens(request: ChatRequest) -> int:
    """The request's prompt at about four characters a token."""
    return estimate_tokens("".join(m.content for m in request.messages) + (request.system_prompt or ""))


def estimated_usage(request: ChatRequest, parts: list[str]) -> Usage:
    """For a server whose stream reports no usage, and for a cancelled answer."""
    return Usage(input_tokens=prompt_tokens(request), output_tokens=estimate_tokens("".join(parts)))


def attempt_request(request: ChatRequest, model: ModelCapabilities, chain: Chain, trace_id: str | None) -> ChatRequest:
    """The request for this attempt: the model's name, the text already streamed as an
    assistant prefill (so the model continues the answer instead of starting another), and
    the caller's request id, for the provider's logs."""
    messages = request.messages + ((Message("assistant", chain.partial),) if chain.partial else ())
    return dataclasses.replace(request, model=model.model_name, messages=messages, request_id=trace_id)


class Caller:
    """Calls a model through its provider's adapter."""

    def __init__(self, providers: ProviderRegistry):
        self.providers = providers

    def call(self, model: ModelCapabilities, request: ChatRequest, read_timeout: float, deadline: float,
             on_delta: Callable[[str], None] | None = None) -> ChatResponse:
        """One attempt. A model that streams is called streaming even when the caller waits for
        the whole answer: that is how a missing first token or a stalled stream is noticed.
        `on_delta` receives each piece of text as it arrives."""
        provider = self.providers.for_model(model)
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
        assert isinstance(end, StreamEnd)  # an adapter's stream ends with one, or raises
        latency = time.monotonic() - started
        return ChatResponse(
            content="".join(parts),
            finish_reason=end.finish_reason,
            usage=end.usage if end.usage.input_tokens or end.usage.output_tokens else estimated_usage(request, parts),
            model=model.model_name,
            provider=model.provider,
            provider_request_id=end.provider_request_id,
            latency=latency,
            time_to_first_token=first_token if first_token is not None else latency,
            sandbox=provider.sandbox,
            tool_calls=end.tool_calls,
            logprobs=end.logprobs,
        )


class Observer:
    """Statistics and circuits learn from every attempt (one round trip)."""

    def __init__(self, *, redis_client: redis.Redis, stats: Stats, circuits: Circuits, accounting: Accounting,
                 neighbourhoods: NeighbourhoodQuality):
        self.redis, self.stats, self.circuits, self.accounting = redis_client, stats, circuits, accounting
        self.neighbourhoods = neighbourhoods

    def observe(self, model: ModelCapabilities | EmbeddingModel, error: ProviderError | None, duration: float,
                response: ChatResponse | None = None, cost: float = 0.0, fallback: bool = False) -> None:
        kind = error.kind if error else None
        pipe = self.redis.pipeline(transaction=False)
        self.stats.record(Outcome(
            model=model.model_name, provider=model.provider, error=kind.value if kind else None, latency=duration,
            ttft=response.time_to_first_token if response else None,
            input_tokens=response.usage.input_tokens if response else 0,
            output_tokens=response.usage.output_tokens if response else 0,
            cost=cost, fallback=fallback,
        ), pipe=pipe)
        # An error the request caused (bad, filtered, too long) says nothing of a model's health.
        if kind is None or kind.policy.blames_model:
            unavailable = kind in (ErrorKind.AUTH, ErrorKind.NOT_FOUND)
            self.circuits.record(model.model_name, model.provider, success=kind is None, force_open=unavailable,
                                 pipe=pipe)
            if unavailable and error is not None:
                log.warning("ALERT model %s marked unavailable: %s", model.model_name, error.message)
        try:
            replies = pipe.execute()
        except redis.RedisError:
            # Statistics and circuits miss one attempt; the answer in hand must still be published.
            log.warning("could not record an attempt of %s: Redis unreachable", model.model_name)
            return
        if kind is not None and len(replies) > 1 and replies[1]:  # a circuit opened just now
            self.accounting.circuits_opened(model.model_name, model.provider, replies[1], kind.value)

    def learn_failure(self, decision: Decision | None, model: ModelCapabilities, error: ProviderError) -> None:
        """A model that failed this prompt's kind of request counts against it in the prompt's
        neighbourhood; errors the request caused (a bad request, a filter) say nothing of it."""
        if decision is None or not error.kind.policy.blames_model:
            return
        try:
            self.neighbourhoods.record_failure(decision.prediction, model.model_name)
        except redis.RedisError:
            log.exception("could not record a failure in the prompt's neighbourhood")

    def cancelled(self, model: ModelCapabilities, duration: float, usage: Usage, cost: float) -> None:
        self.stats.record(Outcome(model=model.model_name, provider=model.provider, error="cancelled",
                                  latency=duration, input_tokens=usage.input_tokens,
                                  output_tokens=usage.output_tokens, cost=cost))

    def may_call(self, model: ModelCapabilities | EmbeddingModel, state: str | None, last: bool) -> bool:
        """Whether the model's circuit lets this attempt through (`state` when this run has just
        read it). The `last` model of a chain is always tried: when every model is open, the best
        one is still worth an attempt."""
        if last:
            return True
        state = state or self.circuits.states([(model.model_name, model.provider)])[model.model_name]
        if state == "probe":
            return self.circuits.try_probe(model.model_name, model.provider)
        return state == "closed"
