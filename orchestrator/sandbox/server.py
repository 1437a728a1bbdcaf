"""The sandbox's HTTP server (aiohttp): the OpenAI Chat Completions wire format.

Latency per model comes from the catalog (time to first token plus tokens at the
model's speed), scaled by SANDBOX_LATENCY_SCALE; 0 answers at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from aiohttp import web

from orchestrator.catalog import Catalog
from orchestrator.sandbox.answers import answer, count_tokens

CATALOG_KEY = web.AppKey("catalog", Catalog)
SCALE_KEY = web.AppKey("latency_scale", float)


def _openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return web.json_response({"error": error}, status=status)


def _prompt_text(messages: list[dict]) -> str:
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


async def _model_delay(app: web.Application, model: str, output_tokens: int) -> None:
    scale = app[SCALE_KEY]
    catalog = app[CATALOG_KEY]
    if scale <= 0 or model not in catalog:
        return
    spec = catalog.get(model)
    await asyncio.sleep(scale * (spec.ttft + output_tokens / spec.tokens_per_second))


async def chat_completions(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _openai_error(400, "We could not parse the JSON body of your request.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _openai_error(400, "'messages' must be a non-empty array.", param="messages")
    model = body.get("model") or "unknown"
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 1024
    prompt = _prompt_text(messages)
    text, output_tokens, finish_reason = answer(prompt, int(max_tokens))
    await _model_delay(request.app, model, output_tokens)
    input_tokens = count_tokens(prompt) + 3 * len(messages)
    request_id = f"req_{uuid.uuid4().hex}"
    return web.json_response(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        },
        headers={"x-request-id": request_id},
    )


async def list_models(request: web.Request) -> web.Response:
    models = [
        {"id": m.model_name, "object": "model", "created": 0, "owned_by": m.provider}
        for m in request.app[CATALOG_KEY]
    ]
    return web.json_response({"object": "list", "data": models})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(catalog: Catalog, latency_scale: float = 1.0) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[CATALOG_KEY] = catalog
    app[SCALE_KEY] = latency_scale
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    return app


def run(host: str, port: int, catalog: Catalog, latency_scale: float) -> None:
    web.run_app(create_app(catalog, latency_scale), host=host, port=port, backlog=4096, access_log=None)
