"""Anthropic's stream read from its SSE lines: an error event mid-stream counts as the
status its type stands for (it arrives after a 200), so an overload falls over."""

import json

import pytest

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import StreamDelta
from orchestrator.providers.anthropic_messages import AnthropicProvider


class Lines:
    def __init__(self, *events: dict):
        self.lines = [line for e in events for line in (f"event: {e['type']}", f"data: {json.dumps(e)}", "")]
        self.headers = {"request-id": "req_1"}

    def iter_lines(self):
        return iter(self.lines)


START = {"type": "message_start", "message": {"usage": {"input_tokens": 7, "output_tokens": 1}}}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}


def test_an_overload_mid_stream_is_an_overload_not_a_bad_request():
    provider = AnthropicProvider("anthropic", client=None, sandbox=False)
    events = provider._events(Lines(START, DELTA, {"type": "error", "error": {"type": "overloaded_error",
                                                                              "message": "Overloaded"}}), "claude-x")
    assert next(events) == StreamDelta("Hello")
    with pytest.raises(ProviderError) as caught:
        next(events)
    assert caught.value.kind is ErrorKind.OVERLOADED and caught.value.status == 529
    assert caught.value.kind.policy.fallback


def test_a_complete_stream_ends_with_its_usage_and_request_id():
    provider = AnthropicProvider("anthropic", client=None, sandbox=False)
    end = list(provider._events(Lines(START, DELTA, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                                     "usage": {"output_tokens": 2}},
                                      {"type": "message_stop"}), "claude-x"))[-1]
    assert (end.finish_reason, end.usage.input_tokens, end.usage.output_tokens) == ("stop", 7, 2)
    assert end.provider_request_id == "req_1"
