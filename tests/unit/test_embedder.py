"""The embedder driven without a worker: its stores on fakeredis, the provider scripted."""

import dataclasses
import time

import fakeredis
import pytest

from orchestrator.config import load_settings
from orchestrator.core.catalog import Catalog
from orchestrator.core.embedding import EmbeddingJob, encode_vector
from orchestrator.core.job import Status
from orchestrator.providers.base import Embedded
from orchestrator.runtime.services import Services

MODEL = "text-embedding-3-small"


class Scripted:
    name, sandbox = "openai", True

    def __init__(self):
        self.calls = 0

    def embed(self, model, inputs, dimensions, timeout, request_id):
        self.calls += 1
        return Embedded([encode_vector([1.0, 0.0]) for _ in inputs], 500)


@pytest.fixture
def env():
    settings = dataclasses.replace(load_settings(read_dotenv=False), redis_prefix="t:", cost_tracking_enabled=True)
    services = Services(settings=settings, redis=fakeredis.FakeRedis(decode_responses=True), catalog=Catalog.load())
    provider = Scripted()
    services.__dict__["providers"] = type("Registry", (), {"embedder": lambda self, model: provider})()
    return services, provider


def test_a_request_delivered_again_is_neither_called_nor_billed_twice(env):
    services, provider = env
    job = EmbeddingJob(owner="admin", model=MODEL, inputs=("a", "b"), dimensions=None, deadline=time.time() + 30)
    services.requests.create("req_e", "admin", "embedding")
    for _ in range(3):
        services.embedder.run("req_e", job)
    record = services.requests.get("req_e")
    assert record["status"] == Status.COMPLETED and provider.calls == 1
    assert services.budgets.usage("admin") == (pytest.approx(0.00001), 0.0)  # 500 tokens at $0.02/M, once
    (row,) = services.usage.month("admin")
    assert row.requests == 1 and row.model == MODEL and row.complexity == "embedding"
