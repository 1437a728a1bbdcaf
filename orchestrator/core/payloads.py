"""The chat payload: what the API enqueues and the worker executes, as one JSON dict.

Fields: messages (this request's history then its message, as {"role", "content"}),
conversation_id, system_prompt, temperature, max_tokens, strategy, model (pinned),
budget_limit, user (the caller's end user), first_token_timeout, stop (sequences), top_p,
models (an explicit order of models to try), stream (publish chunks as they come),
owner (the API key's user), deadline (time.time() after which no attempt starts).
"""

from __future__ import annotations

import time

from orchestrator.config import Settings
from orchestrator.core.types import ChatRequest, Message

PAYLOAD_FIELDS = (
    "conversation_id", "system_prompt", "temperature", "max_tokens", "strategy", "model", "budget_limit", "user",
    "first_token_timeout", "stop", "top_p", "models",
)


def payload_from_body(body: dict, owner: str, settings: Settings) -> dict:
    """The payload of an API chat body (`message` plus optional `history` and settings).
    The request's time budget (`timeout`, else REQUEST_TIMEOUT) starts now."""
    payload = {name: body.get(name) for name in PAYLOAD_FIELDS}
    payload["messages"] = [*body.get("history", ()), {"role": "user", "content": body["message"]}]
    payload["owner"] = owner
    payload["deadline"] = time.time() + (body.get("timeout") or settings.request_timeout)
    return payload


def new_messages(payload: dict) -> tuple[Message, ...]:
    """The messages this request brings: its history, then its message."""
    return tuple(Message(m["role"], m["content"]) for m in payload["messages"])


def chat_request(payload: dict, settings: Settings, earlier: tuple[Message, ...] = ()) -> ChatRequest:
    """The whole conversation (a stored conversation's `earlier` messages first) and the
    generation settings, with the configured defaults where the payload leaves them out."""
    temperature = payload.get("temperature")
    return ChatRequest(
        model="",
        messages=earlier + new_messages(payload),
        system_prompt=payload.get("system_prompt"),
        temperature=settings.default_temperature if temperature is None else temperature,
        top_p=payload.get("top_p"),
        max_tokens=payload.get("max_tokens") or settings.default_max_tokens,
        stop=tuple(payload.get("stop") or ()),
    )
