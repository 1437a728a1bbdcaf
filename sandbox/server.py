"""The sandbox's HTTP server (aiohttp): it plays OpenAI, Anthropic and Gemini, and their batch APIs.

Every provider request goes through one pipeline: read the call in its wire format, log
the attempt, pick a fault (the x-sandbox-fault header, else the first rule that applies),
then answer: a provider error, a dropped or silent connection, or the reply after the
model's latency (catalog ttft and speed times SANDBOX_LATENCY_SCALE), plain or streamed.
"""

from __future__ import annotations

import gc
import resource
import time
import uuid

from aiohttp import web

from orchestrator.core.catalog import Catalog, ModelCapabilities
from sandbox import anthropic_batches, control, embeddings, gemini_batches, openai_batches
from sandbox.anthropic_wire import AnthropicWire
from sandbox.attempts import Attempt
from sandbox.connection import reset, until_disconnected
from sandbox.conversation import InvalidConversation
from sandbox.faults import FAULT_ERRORS, FAULT_HEADER, Fault, FaultSyntaxError, parse_fault_header
from sandbox.gemini_wire import GeminiWire
from sandbox.latency import Latency, fixed_latency
from sandbox.openai_wire import OpenAIWire
from sandbox.reply import Asked, replies_to
from sandbox.state import STATE_KEY, SandboxState
from sandbox.streaming import open_stream, pause, plan, play
from sandbox.wire import Call, Completion, UpstreamError, Usage, WireFormat, invalid

BACKLOG = 8192  # the kernel caps it at net.core.somaxconn
DEFAULT_MAX_TOKENS = 4096  # for a model the catalog does not know
DEFAULT_CONTEXT_WINDOW = 8192

async def _read_call(request: web.Request, wire: WireFormat) -> Call:
    try:
        body = await request.json()
    except ValueError:
        raise invalid("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    try:
        return wire.parse(body, dict(request.match_info))
    except InvalidConversation as exc:
        raise invalid(str(exc)) from None


def _fault_for(request: web.Request, call: Call, state: SandboxState) -> Fault | None:
    prefill = call.conversation.prefill is not None
    header = request.headers.get(FAULT_HEADER)
    if header is None:
        return state.rules.take(call.model, call.stream, prefill)
    try:
        fault = parse_fault_header(header)
    except FaultSyntaxError as exc:
        raise invalid(f"sandbox: {exc}") from None
    return fault if fault.applies_to(call.stream, prefill) else None


def _fault_error(fault: Fault, call: Call, spec: ModelCapabilities | None) -> UpstreamError:
    tokens = call.conversation.input_tokens()
    if fault.kind == "context_length":
        limit = spec.context_window if spec else DEFAULT_CONTEXT_WINDOW
        return UpstreamError("context_length", tokens=max(tokens, limit + 1), limit=limit)
    if fault.kind == "content_filter":
        return UpstreamError("content_filter", tokens=tokens, block=fault["block"])
    if fault.kind == "reject_prefill":
        return invalid("This model does not support assistant message prefill. "
                       "The conversation must end with a user message.")
    return UpstreamError(FAULT_ERRORS[fault.kind], retry_after=fault.params.get("retry_after"))


def _check_context_window(call: Call, spec: ModelCapabilities | None) -> None:
    tokens = call.conversation.input_tokens()
    if spec is not None and tokens > spec.context_window:
        raise UpstreamError("context_length", tokens=tokens, limit=spec.context_window)


def _complete(state: SandboxState, wire: WireFormat, call: Call, spec: ModelCapabilities | None,
              fault: Fault | None) -> Completion:
    max_tokens = call.max_tokens or (spec.max_tokens if spec else DEFAULT_MAX_TOKENS)
    asked = Asked(max_tokens, call.stop, call.tool_options, call.output, call.choices,
                  reasoning=bool(spec and spec.reasoning_model), invalid=fault is not None and fault.kind == "invalid_output")
    replies = replies_to(call.conversation, asked)
    cached = state.prompt_cache.cached_tokens(call.model, call.conversation)
    usage = Usage(call.conversation.input_tokens(), cached, sum(r.tokens for r in replies),
                  sum(r.reasoning_tokens for r in replies))
    return Completion(call, replies, usage, wire.new_id(), int(time.time()))


async def _answer(request: web.Request, wire: WireFormat, call: Call, attempt: Attempt,
                  fixed_latency: float | None) -> web.StreamResponse | None:
    """The response to a call, or None when the fault leaves the connection without one."""
    state = request.app[STATE_KEY]
    spec = state.spec(call.model)
    fault = attempt.fault
    kind = fault.kind if fault else None
    if kind in FAULT_ERRORS:
        raise _fault_error(fault, call, spec)
    if kind == "reset":
        reset(request)
        return None
    if kind == "no_response":
        await until_disconnected(request)
        return None
    _check_context_window(call, spec)
    completion = _complete(state, wire, call, spec, fault)
    pacing = state.latency.pacing(call.model, completion.reply.reasoning_tokens, fixed_latency)
    if kind == "slow_first_token":
        await pause(fault["seconds"])
    if call.stream:
        response = await open_stream(request, {wire.request_id_header: attempt.request_id})
        attempt.status = response.status  # now, as the stream may take long or never end
        finished = await play(request, response, *plan(wire, completion, pacing, fault))
        attempt.ended = "completed" if finished else "client_closed"
        return response
    await pause(pacing.total(completion.usage.output_tokens))
    return wire.respond(wire.completion_body(completion), attempt.request_id)


async def serve(request: web.Request, wire: WireFormat) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    request_id = f"req_{uuid.uuid4().hex}"
    attempt = state.attempts.start(wire.api, time.time(), request_id, request.headers.get("X-Request-ID"))
    attempt.model = request.match_info.get("model")
    try:
        call = await _read_call(request, wire)
        attempt.model, attempt.stream, attempt.conversation = call.model, call.stream, call.conversation
        fixed = fixed_latency(request)
        attempt.fault = _fault_for(request, call, state)
        response = await _answer(request, wire, call, attempt, fixed)
    except UpstreamError as error:
        response = wire.error_response(error, attempt.stream, request_id)
    if response is None:
        return web.Response()  # aiohttp fails to send it quietly: the connection is gone
    attempt.status = response.status
    return response


def answer_alone(state: SandboxState, wire: WireFormat, body: dict, route: dict, client_request_id: str
                 ) -> tuple[int, dict]:
    """An item of a provider batch, answered (status and body) as the same call made alone
    would be, with its fault rules (those that act on a connection are a server error here),
    and logged as an attempt whose client request id is the item's custom id."""
    attempt = state.attempts.start(wire.api, time.time(), f"req_{uuid.uuid4().hex}", client_request_id)
    try:
        try:
            call = wire.parse(body, route)
        except InvalidConversation as exc:
            raise invalid(str(exc)) from None
        attempt.model, attempt.conversation = call.model, call.conversation
        spec, fault = state.spec(call.model), state.rules.take(call.model, False, call.conversation.prefill is not None)
        attempt.fault = fault
        if fault is not None and fault.kind in FAULT_ERRORS:
            raise _fault_error(fault, call, spec)
        if fault is not None and fault.kind in ("reset", "no_response"):
            raise UpstreamError("server_error")
        _check_context_window(call, spec)
        status, answer = 200, wire.completion_body(_complete(state, wire, call, spec, fault))
    except UpstreamError as error:
        status, answer = wire.error_payload(error)
    attempt.status = status
    return status, answer


async def _batch_of_its_api(request: web.Request) -> web.Response:
    """GET /v1/batches/{id} is both OpenAI's batch and, at google-genai's default API version,
    Gemini's batch job: the job's own API answers."""
    job = request.app[STATE_KEY].batches.get(request.match_info["batch_id"])
    retrieve = gemini_batches.retrieve if job is not None and job.api == GeminiWire.api else openai_batches.retrieve
    return await retrieve(request)


async def _batches_of_its_api(request: web.Request) -> web.Response:
    """GET /v1/batches lists OpenAI's batches and, at google-genai's default API version,
    Gemini's jobs: the client's key header tells which."""
    if "x-goog-api-key" in request.headers:
        return await gemini_batches.list_jobs(request)
    return await openai_batches.list_batches(request)


def _endpoint(wire: WireFormat):
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, wire)

    return handle


async def list_models(request: web.Request) -> web.Response:
    models = [
        {"id": m.model_name, "object": "model", "created": 0, "owned_by": m.provider}
        for m in request.app[STATE_KEY].catalog
    ]
    return web.json_response({"object": "list", "data": models})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(catalog: Catalog, latency_scale: float = 1.0, *, seed: int = 0) -> web.Application:
    """The sandbox application; `seed` makes the latency jitter reproducible."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = SandboxState(catalog, Latency(catalog, latency_scale, seed))
    app.router.add_post("/v1/chat/completions", _endpoint(OpenAIWire()))
    app.router.add_post("/v1/messages", _endpoint(AnthropicWire()))
    # google-genai's default API version depends on its release; serve both.
    app.router.add_post(
        "/{version:v1|v1beta}/models/{model}:{action:generateContent|streamGenerateContent}", _endpoint(GeminiWire())
    )
    embeddings.add_routes(app.router)
    app.router.add_get("/v1/models", list_models)
    # The providers' batch APIs (sandbox/batch_jobs.py); their items answered by `answer_alone`.
    openai_batches.add_routes(app.router, answer_alone)
    anthropic_batches.add_routes(app.router, answer_alone)
    gemini_batches.add_routes(app.router, answer_alone)
    app.router.add_get("/v1/batches/{batch_id}", _batch_of_its_api)
    app.router.add_get("/v1/batches", _batches_of_its_api)
    app.router.add_get("/health", health)
    control.add_routes(app.router)
    return app


def raise_open_files_limit() -> None:
    """Each connection is a file descriptor: allow as many as the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit is above what the kernel allows
            pass


def run(host: str, port: int, catalog: Catalog, latency_scale: float) -> None:
    raise_open_files_limit()
    app = create_app(catalog, latency_scale)
    gc.collect()
    gc.freeze()  # no full collection's pause in a measured call (as api/wsgi.py)
    web.run_app(app, host=host, port=port, backlog=BACKLOG, access_log=None)
