"""Embeddings' contracts between processes: the job the API enqueues and a worker runs, and
the result it publishes. Vectors travel as OpenAI's `base64` encoding (little-endian float32),
a quarter of their JSON size as floats; the door decodes them when a caller asks for floats."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

EMBEDDING_JOB_VERSION = 1
EMBEDDING_KIND = "embedding"  # the kind of an embedding request's record, and the complexity usage groups it under
MAX_INPUTS = 2048  # inputs in one request, as OpenAI's embeddings endpoint allows


def encode_vector(values) -> str:
    """A vector (floats) in the base64 encoding."""
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(encoded: str) -> list[float]:
    return np.frombuffer(base64.b64decode(encoded), dtype="<f4").tolist()


class UnknownEmbeddingJobVersion(ValueError):
    """A job enqueued by a newer release than this worker's."""


@dataclass(frozen=True)
class EmbeddingJob:
    owner: str
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None  # a shorter vector than the model's own, where it takes one
    deadline: float  # time.time() after which nobody waits for the answer
    user: str | None = None  # the caller's end user (OpenAI's `user`)
    version: int = EMBEDDING_JOB_VERSION

    def to_json(self) -> dict:
        return {"version": self.version, "owner": self.owner, "model": self.model, "inputs": list(self.inputs),
                "dimensions": self.dimensions, "deadline": self.deadline, "user": self.user}

    @classmethod
    def from_json(cls, data: dict) -> EmbeddingJob:
        if data.get("version", 1) > EMBEDDING_JOB_VERSION:
            raise UnknownEmbeddingJobVersion(f"embedding job version {data['version']} is newer than this worker's "
                                             f"({EMBEDDING_JOB_VERSION})")
        return cls(owner=data["owner"], model=data["model"], inputs=tuple(data["inputs"]),
                   dimensions=data.get("dimensions"), deadline=data["deadline"], user=data.get("user"),
                   version=data.get("version", 1))


@dataclass(frozen=True)
class EmbeddingResult:
    """What an embedding request answered: a base64 vector an input, in the inputs' order."""

    request_id: str
    model: str  # the catalog model that answered (the one asked for, or a fallback of its space)
    provider: str
    vectors: tuple[str, ...]
    input_tokens: int
    cost: float
    attempts: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """The result less its vectors: what the request's record keeps after the answer is read."""
        return {"request_id": self.request_id, "model_used": self.model, "provider": self.provider,
                "inputs": len(self.vectors), "usage": {"input_tokens": self.input_tokens}, "cost": self.cost,
                "attempts": self.attempts}

    def to_json(self) -> dict:
        return {**self.summary(), "vectors": list(self.vectors)}

    @classmethod
    def from_json(cls, data: dict) -> EmbeddingResult:
        return cls(request_id=data["request_id"], model=data["model_used"], provider=data["provider"],
                   vectors=tuple(data["vectors"]), input_tokens=data["usage"]["input_tokens"], cost=data["cost"],
                   attempts=data.get("attempts") or [])
