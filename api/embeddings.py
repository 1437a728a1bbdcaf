"""OpenAI's embeddings endpoint at /v1: POST /v1/embeddings.

The model is named, never routed: vectors of two models do not share a space, so `auto`
cannot choose one. The request goes through the queue to a worker like a chat request
(docs/architecture.md, "Embeddings": the measured reason), which calls the model, or, when
it fails, another model of its space (the same model at another provider), with the month's
budget reserved before and settled after, once. Errors come in OpenAI's shape (api/doors.py).
Outside the OpenAPI spec, as the other /v1 doors.
"""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from api import services
from api.auth import current_user
from api.chat import wait_result
from api.door_request import AUTO_MODELS, allow_keys, integer, invalid, json_body, string, unknown_model, wrong_type
from api.doors import PREFIX
from orchestrator.core.catalog import EmbeddingModel
from orchestrator.core.embedding import EMBEDDING_KIND, MAX_INPUTS, EmbeddingJob, EmbeddingResult, decode_vector
from orchestrator.core.job import new_request_id
from workers import dispatch

blp = Blueprint("embeddings", __name__, url_prefix=PREFIX)

PARAMETERS = ("model", "input", "dimensions", "encoding_format", "user")
ENCODINGS = ("float", "base64")


def _model(body: dict) -> EmbeddingModel:
    name = body.get("model")
    if name is None:
        raise invalid("You must provide a model parameter: the name of an embedding model (GET /v1/models lists "
                      "them).", "model", "missing_required_parameter")
    if not isinstance(name, str):
        raise wrong_type("model", "a string", name)
    catalog = services().catalog
    if name in catalog.embeddings:
        return catalog.embeddings[name]
    if name in AUTO_MODELS or name in catalog:
        raise invalid(f"'{name}' is not an embedding model: name one of {', '.join(catalog.embeddings)} (vectors of "
                      "two models are not comparable, so none is chosen for you).", "model", "model_not_embedding")
    raise unknown_model(name, "model")


def _inputs(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise invalid("Invalid 'input': send a string or a non-empty array of strings.", "input")
    if len(value) > MAX_INPUTS:
        raise invalid(f"Invalid 'input': {len(value)} inputs, more than the {MAX_INPUTS} a request may hold.", "input")
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise invalid(f"Invalid 'input[{index}]': send text; arrays of token ids are not taken (the gateway "
                          "serves models of several tokenizers).", f"input[{index}]")
        if not text:
            raise invalid(f"Invalid 'input[{index}]': an input must not be empty.", f"input[{index}]")
    return tuple(value)


def _dimensions(body: dict, model: EmbeddingModel) -> int | None:
    dimensions = integer(body, "dimensions", 1, model.dimensions)
    if dimensions is not None and not model.flexible_dimensions and dimensions != model.dimensions:
        raise invalid(f"{model.model_name} does not take 'dimensions': its vectors have {model.dimensions}.",
                      "dimensions")
    return dimensions


def read_job(body: dict) -> tuple[EmbeddingJob, str]:
    """The job an embeddings body asks for, and the encoding of its answer; Refused when it cannot be served."""
    allow_keys(body, "body", PARAMETERS)
    model = _model(body)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise invalid(f"Invalid 'encoding_format': {encoding!r}; send one of {', '.join(ENCODINGS)}.", "encoding_format")
    job = EmbeddingJob(owner=current_user().id, model=model.model_name, inputs=_inputs(body.get("input")),
                       dimensions=_dimensions(body, model), deadline=time.time() + services().settings.request_timeout,
                       user=string(body, "user", 256))
    return job, encoding


def _result(request_id: str, job: EmbeddingJob) -> EmbeddingResult:
    try:
        return EmbeddingResult.from_json(wait_result(request_id, job.deadline))
    finally:
        services().requests.drop_events(request_id)  # the vectors, read once


def _body(result: EmbeddingResult, encoding: str) -> dict:
    data = [{"object": "embedding", "index": index,
             "embedding": vector if encoding == "base64" else decode_vector(vector)}
            for index, vector in enumerate(result.vectors)]
    return {"object": "list", "data": data, "model": result.model,
            "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens}}


def _headers(result: EmbeddingResult) -> dict:
    return {"x-orchestrator-model": result.model, "x-orchestrator-provider": result.provider,
            "x-orchestrator-cost": f"{result.cost:.6f}", "x-orchestrator-attempts": str(len(result.attempts)),
            "x-request-id": result.request_id}


@blp.post("/embeddings")
def create_embeddings():
    job, encoding = read_job(json_body())
    request_id = new_request_id()
    services().requests.create(request_id, job.owner, EMBEDDING_KIND, job.user)
    dispatch.enqueue_embedding(request_id, job)
    result = _result(request_id, job)
    return jsonify(_body(result, encoding)), 200, _headers(result)


def model_entries() -> list[dict]:
    """The embedding models in GET /v1/models."""
    return [{"id": m.model_name, "object": "model", "created": 0, "owned_by": m.provider}
            for m in services().catalog.embeddings.values()]

