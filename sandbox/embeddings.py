"""The providers' embeddings endpoints: OpenAI's POST /v1/embeddings and Gemini's
batchEmbedContents.

A vector is deterministic: drawn from a generator seeded by the model's name at its provider
and the text, then normalised, so the same text always gets the same vector from the same
model, whichever provider (OpenAI or an OpenAI-compatible mirror) serves it. A shorter
vector asked for (`dimensions`, `outputDimensionality`) is the full one's beginning,
normalised again, as OpenAI's and Gemini's shortened embeddings are. Each call is logged as
an attempt (its inputs as user messages) and takes the fault rules that apply to a plain call.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import numpy as np
from aiohttp import web

from orchestrator.core.catalog import EmbeddingModel
from orchestrator.core.embedding import encode_vector
from sandbox.answers import count_tokens
from sandbox.attempts import Attempt
from sandbox.connection import reset, until_disconnected
from sandbox.conversation import Conversation, Message
from sandbox.faults import FAULT_ERRORS, Fault
from sandbox.gemini_wire import GeminiWire
from sandbox.latency import fixed_latency
from sandbox.openai_wire import OpenAIWire
from sandbox.state import STATE_KEY, SandboxState
from sandbox.streaming import pause
from sandbox.wire import UpstreamError, WireFormat, invalid


def vector(model: str, text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
    values = np.random.default_rng(seed).standard_normal(dimensions)
    return values / np.linalg.norm(values)


def shortened(full: np.ndarray, dimensions: int | None) -> np.ndarray:
    if dimensions is None or dimensions == len(full):
        return full
    return full[:dimensions] / np.linalg.norm(full[:dimensions])


def _model(state: SandboxState, name: str) -> EmbeddingModel:
    for model in state.catalog.embeddings.values():
        if model.upstream == name:
            return model
    raise invalid(f"The model `{name}` does not exist or you do not have access to it.", param="model")


def _dimensions(model: EmbeddingModel, asked) -> int | None:
    if asked is None:
        return None
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
        raise invalid(f"dimensions: must be a whole number of at least 1, got {asked!r}", param="dimensions")
    if not model.flexible_dimensions and asked != model.dimensions:
        raise invalid("This model does not support specifying dimensions.", param="dimensions")
    if asked > model.dimensions:
        raise invalid(f"dimensions: {model.upstream} gives at most {model.dimensions}, got {asked}",
                      param="dimensions")
    return asked


def _embedded(state: SandboxState, attempt: Attempt, name: str, texts: list[str], asked) -> tuple[list, int]:
    """The vectors of `texts` and the tokens counted, once the call's fault (if any) is played."""
    model = _model(state, name)
    attempt.conversation = Conversation(None, tuple(Message("user", text) for text in texts))
    dimensions = _dimensions(model, asked)
    for text in texts:
        if (tokens := count_tokens(text)) > model.max_input_tokens:
            raise UpstreamError("context_length", tokens=tokens, limit=model.max_input_tokens)
    vectors = [shortened(vector(model.upstream, text, model.dimensions), dimensions) for text in texts]
    return vectors, sum(count_tokens(text) for text in texts)


async def _played(request: web.Request, fault: Fault, state: SandboxState, name: str) -> bool:
    """Play the call's fault: raise its provider error, or leave the connection without an
    answer (False), or delay the answer (True: answer it)."""
    if fault.kind == "context_length":
        limit = _model(state, name).max_input_tokens
        raise UpstreamError("context_length", tokens=limit + 1, limit=limit)
    if fault.kind in FAULT_ERRORS:
        raise UpstreamError(FAULT_ERRORS[fault.kind], retry_after=fault.params.get("retry_after"))
    if fault.kind == "reset":
        reset(request)
        return False
    if fault.kind == "no_response":
        await until_disconnected(request)
        return False
    if fault.kind == "slow_first_token":
        await pause(fault["seconds"])
    return True


async def _serve(request: web.Request, wire: WireFormat, read, write) -> web.StreamResponse:
    state: SandboxState = request.app[STATE_KEY]
    request_id = f"req_{uuid.uuid4().hex}"
    attempt = state.attempts.start(wire.api, time.time(), request_id, request.headers.get("X-Request-ID"))
    try:
        try:
            body = await request.json()
        except ValueError:
            raise invalid("We could not parse the JSON body of your request.") from None
        name, texts, asked = read(body, request.match_info)
        attempt.model = name
        attempt.fault = state.rules.take(name, False, False)
        if attempt.fault is not None and not await _played(request, attempt.fault, state, name):
            return web.Response()  # the connection was reset or abandoned: aiohttp sends nothing
        vectors, tokens = _embedded(state, attempt, name, texts, asked)
        await pause(fixed_latency(request) or 0.0)
        response = wire.respond(write(name, vectors, tokens, body), request_id)
    except UpstreamError as error:
        response = wire.error_response(error, False, request_id)
    attempt.status = response.status
    return response


def _texts(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(text, str) for text in value):
        return value
    raise invalid(f"{name}: must be a string or a non-empty list of strings", param=name)


def _openai_call(body: dict, route: dict) -> tuple[str, list[str], object]:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise invalid("you must provide a model parameter", param="model")
    return body["model"], _texts(body.get("input"), "input"), body.get("dimensions")


def _openai_body(name: str, vectors: list, tokens: int, body: dict) -> dict:
    as_base64 = body.get("encoding_format") == "base64"
    data = [{"object": "embedding", "index": index,
             "embedding": encode_vector(v) if as_base64 else [float(x) for x in v.astype("float32")]}
            for index, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _gemini_call(body: dict, route: dict) -> tuple[str, list[str], object]:
    calls = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(calls, list) or not calls:
        raise invalid("requests: must be a non-empty list of embedding requests")
    texts, sizes = [], set()
    for call in calls:
        parts = ((call or {}).get("content") or {}).get("parts") or []
        texts.append("".join(part.get("text", "") for part in parts if isinstance(part, dict)))
        config = call.get("embedContentConfig") or call
        sizes.add(config.get("outputDimensionality"))
    if len(sizes) > 1:
        raise invalid("every request of a batch must ask for the same outputDimensionality")
    return route["model"], texts, sizes.pop()


def _gemini_body(name: str, vectors: list, tokens: int, body: dict) -> dict:
    return {"embeddings": [{"values": [float(x) for x in v.astype("float32")]} for v in vectors]}


async def openai_embeddings(request: web.Request) -> web.StreamResponse:
    return await _serve(request, OpenAIWire(), _openai_call, _openai_body)


async def gemini_embeddings(request: web.Request) -> web.StreamResponse:
    return await _serve(request, GeminiWire(), _gemini_call, _gemini_body)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/embeddings", openai_embeddings)
    router.add_post("/{version:v1|v1beta}/models/{model}:batchEmbedContents", gemini_embeddings)
