"""POST /v1/embeddings driven by the official openai SDK over real HTTP: this module's own web
server and worker (under their own key prefix) with a catalog that adds a second provider of
text-embedding-3-small (an OpenAI-compatible mirror, played by the sandbox), so that a failed
call can fall back to the same vectors elsewhere. OpenAI's and Gemini's embeddings APIs are
both played by the sandbox through their SDKs."""

from __future__ import annotations

import base64
import json
import math
import os
import signal

import numpy as np
import openai
import pytest
import redis
import requests

from orchestrator.store.budgets import Budgets
from orchestrator.store.fleet import Fleet
from orchestrator.store.users import Users
from sandbox.embeddings import shortened, vector
from tests.processes import free_port, orchestrator, wait_until

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

SMALL, MIRROR, LARGE, GEMINI = ("text-embedding-3-small", "mirror/text-embedding-3-small", "text-embedding-3-large",
                                "gemini-embedding-001")
ADA, LIMITED = "text-embedding-ada-002", "limited/text-embedding-3-large"
LIMIT_WINDOW = 2  # PROVIDER_LIMIT_WINDOW of this module's processes, so that limits show in seconds
MODELS = """
providers:
  mirror: {{kind: openai, base_url: "{sandbox}/v1"}}
embedding_models:
  {mirror}:
    provider: mirror
    upstream: {small}
    dimensions: 1536
    flexible_dimensions: true
    prices: {{input: 0.05}}
  {limited}:   # two calls a {window} s window, one a lane; a space of its own
    provider: mirror
    upstream: {large}
    space: limited
    dimensions: 3072
    prices: {{input: 0.13}}
    limits: {{rpm: 60}}
limits:
  {ada}: {{rpm: 1}}   # one call a minute, in the batch lane only
"""


class Stack:
    def __init__(self, settings, logs, models):
        self.prefix = f"orchemb{os.getpid()}:"
        env = {"REDIS_PREFIX": self.prefix, "MODELS_FILE": str(models), "PROVIDER_LIMIT_WINDOW": str(LIMIT_WINDOW)}
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.web = orchestrator("embeddings-web", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                log_dir=logs, env=env)
        self.worker = orchestrator("embeddings-worker", "worker", "--concurrency", "4", log_dir=logs, env=env)
        self.users = Users(self.redis, self.prefix, default_budget=100)
        fleet = Fleet(self.redis, self.prefix)
        wait_until(lambda: fleet.alive() or self.worker.popen.poll() is not None, 40, "the embeddings worker")
        assert self.worker.popen.poll() is None, self.worker.log()
        wait_until(lambda: requests.get(f"{self.url}/api/v1/orchestrator/health/live", timeout=2).ok, 30, "the web")

    def client(self, budget: float | None = None) -> openai.OpenAI:
        _, issued = self.users.create("embedder", monthly_budget=budget)
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=issued.key, max_retries=0, timeout=30)
        client.user_id = issued.info.user_id
        return client

    def close(self) -> None:
        self.worker.stop(signal.SIGKILL)
        self.web.stop(signal.SIGKILL)
        for name in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            self.redis.delete(name)


@pytest.fixture(scope="module")
def stack(settings, sandbox, logs, tmp_path_factory):
    models = tmp_path_factory.mktemp("embedding-models") / "models.yaml"
    models.write_text(MODELS.format(sandbox=sandbox, mirror=MIRROR, small=SMALL, limited=LIMITED, large=LARGE,
                                    ada=ADA, window=LIMIT_WINDOW))
    stack = Stack(settings, logs, models)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def client(stack):
    with stack.client() as client:
        yield client


def expected(model: str, text: str, native: int, dimensions: int | None = None) -> np.ndarray:
    return shortened(vector(model, text, native), dimensions).astype("<f4")


def attempts(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]


def fault(sandbox: str, model: str, kind: str, count: int) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": kind, "count": count},
                  timeout=5).raise_for_status()


def test_one_text_gets_its_models_vector_billed_once(stack, client, sandbox):
    raw = client.embeddings.with_raw_response.create(model=SMALL, input="The quick brown fox")
    answer = raw.parse()  # the SDK asked for base64 and decoded it
    (item,) = answer.data
    assert np.allclose(item.embedding, expected(SMALL, "The quick brown fox", 1536), atol=1e-6)
    assert answer.model == SMALL and answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens
    (attempt,) = attempts(sandbox)
    assert attempt["api"] == "openai" and attempt["model"] == SMALL and attempt["status"] == 200
    assert attempt["client_request_id"] == raw.headers["x-request-id"]
    cost = float(raw.headers["x-orchestrator-cost"])  # a few tokens cost less than the micro-dollar billed
    assert cost == 0.000001 and answer.usage.prompt_tokens * 0.02 / 1e6 < cost
    spent, reserved = Budgets(stack.redis, stack.prefix).usage(client.user_id)
    assert spent == pytest.approx(cost, abs=1e-6) and reserved == 0
    usage = requests.get(f"{stack.url}/api/v1/orchestrator/analytics/user",
                         headers={"Authorization": f"Bearer {client.api_key}"}, timeout=10).json()
    metrics = usage["metrics"]
    assert metrics["requests"] == 1 and metrics["current_spend"] == pytest.approx(cost, abs=1e-9)
    assert SMALL in json.dumps(metrics["usage_by_complexity"]["embedding"])
    (listed,) = requests.get(f"{stack.url}/api/v1/orchestrator/analytics/requests",
                             headers={"Authorization": f"Bearer {client.api_key}"}, timeout=10).json()["requests"]
    assert listed["request_id"] == raw.headers["x-request-id"] and listed["status"] == "completed"
    assert listed["model"] == SMALL and listed["cost"] == cost and listed["complexity"] == "embedding"
    record = stack.redis.hget(f"{stack.prefix}req:{listed['request_id']}", "result")
    assert "vectors" not in json.loads(record)  # the record keeps the result less its vectors


def test_a_batch_of_inputs_keeps_its_order_and_takes_fewer_dimensions(client):
    texts = ["first", "second text", "a third, longer text about embeddings"]
    answer = client.embeddings.create(model=LARGE, input=texts, dimensions=256, encoding_format="float")
    assert [item.index for item in answer.data] == [0, 1, 2]
    for item, text in zip(answer.data, texts, strict=True):
        assert len(item.embedding) == 256
        assert np.allclose(item.embedding, expected(LARGE, text, 3072, 256), atol=1e-6)
    as_base64 = client.embeddings.create(model=LARGE, input=texts[:1], dimensions=256, encoding_format="base64")
    decoded = np.frombuffer(base64.b64decode(as_base64.data[0].embedding), dtype="<f4")
    assert np.array_equal(decoded, np.asarray(answer.data[0].embedding, dtype="<f4"))


def test_gemini_embeds_through_its_own_api_in_calls_of_a_hundred(client, sandbox):
    texts = [f"text number {i}" for i in range(150)]
    answer = client.embeddings.create(model=GEMINI, input=texts, dimensions=768)
    assert len(answer.data) == 150
    for index in (0, 99, 100, 149):
        assert np.allclose(answer.data[index].embedding, expected(GEMINI, texts[index], 3072, 768), atol=1e-6)
    calls = attempts(sandbox)
    assert [(a["api"], len(a["messages"])) for a in calls] == [("gemini", 100), ("gemini", 50)]
    assert answer.usage.prompt_tokens > 0  # Gemini counts none: estimated, and billed on the estimate


def test_a_failed_call_falls_back_to_the_same_model_at_another_provider(stack, client, sandbox):
    fault(sandbox, SMALL, "server_error", count=1)
    texts = ["alpha " * 300, "beta " * 300]
    raw = client.embeddings.with_raw_response.create(model=SMALL, input=texts)
    answer = raw.parse()
    assert raw.headers["x-orchestrator-model"] == MIRROR and raw.headers["x-orchestrator-provider"] == "mirror"
    assert raw.headers["x-orchestrator-attempts"] == "2" and answer.model == MIRROR
    for item, text in zip(answer.data, texts, strict=True):  # the same space: the same vectors
        assert np.allclose(item.embedding, expected(SMALL, text, 1536), atol=1e-6)
    assert [a["status"] for a in attempts(sandbox)] == [500, 200]
    report = {m["model"]: m for m in requests.get(f"{stack.url}/api/v1/orchestrator/analytics/models",
                                                  headers={"Authorization": f"Bearer {client.api_key}"},
                                                  timeout=10).json()["models"]}
    assert report[SMALL]["failures_by_class"] == {"server_error": 1} and report[MIRROR]["successes"] == 1
    micro = answer.usage.prompt_tokens * 0.05  # the mirror's price, in micro-dollars
    assert float(raw.headers["x-orchestrator-cost"]) == math.ceil(micro) / 1e6 and micro > 10


def test_a_model_alone_in_its_space_does_not_fall_back_to_another(client, sandbox):
    fault(sandbox, LARGE, "server_error", count=3)
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model=LARGE, input="alpha")
    assert raised.value.status_code == 502 and "after 1 attempt" in raised.value.message
    assert [a["model"] for a in attempts(sandbox)] == [LARGE]


def test_a_model_at_its_rate_limit_is_not_called_and_the_caller_is_told_to_come_back(client, sandbox):
    client.embeddings.create(model=ADA, input="first")
    with pytest.raises(openai.InternalServerError) as raised:  # 503: the next slot is a minute away
        client.embeddings.create(model=ADA, input="second")
    assert raised.value.status_code == 503 and raised.value.code == "rate_limited"
    assert [a["model"] for a in attempts(sandbox)] == [ADA]


def test_calls_wait_for_their_slot_under_the_rate_limit(client, sandbox):
    """Two calls a window: the third waits for the window to move on instead of being sent."""
    for text in ("one", "two", "three"):
        assert len(client.embeddings.create(model=LIMITED, input=text).data) == 1
    times = [a["time"] for a in attempts(sandbox)]
    assert len(times) == 3 and times[2] - times[0] >= LIMIT_WINDOW


def test_a_text_longer_than_the_model_takes_is_the_callers_to_fix(client, sandbox):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model=LARGE, input=["short", "word " * 9000])
    assert raised.value.status_code == 400 and "8191" in raised.value.message
    assert [a["status"] for a in attempts(sandbox)] == [400]


def test_a_spent_budget_is_insufficient_quota_and_nothing_is_called(stack, sandbox):
    with stack.client(budget=0.0000001) as client:
        with pytest.raises(openai.RateLimitError) as raised:
            client.embeddings.create(model=LARGE, input=["a long enough text to cost more than the budget " * 20])
        assert raised.value.code == "insufficient_quota"
        assert raised.value.response.headers["x-should-retry"] == "false"
        assert Budgets(stack.redis, stack.prefix).usage(client.user_id) == (0.0, 0.0)
    assert attempts(sandbox) == []


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": SMALL, "input": []}, 400, "input"),
    ({"model": SMALL, "input": ["ok", ""]}, 400, "input[1]"),
    ({"model": SMALL, "input": [[1, 2, 3]]}, 400, "input[0]"),
    ({"model": SMALL, "input": ["x"] * 2049}, 400, "input"),
    ({"model": SMALL, "input": "x", "dimensions": 4000}, 400, "dimensions"),
    ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 256}, 400, "dimensions"),
    ({"model": SMALL, "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": SMALL, "input": "x", "temperature": 1}, 400, "body.temperature"),
    ({"model": "auto", "input": "x"}, 400, "model"),
    ({"model": "gpt-4o-mini", "input": "x"}, 400, "model"),
    ({"model": "no-such-model", "input": "x"}, 404, "model"),
    ({"input": "x"}, 400, "model"),
])
def test_bad_requests_answer_in_openais_shape_naming_what_to_fix(stack, client, sandbox, body, status, param):
    reply = requests.post(f"{stack.url}/v1/embeddings", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {client.api_key}"})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and error["message"]
    assert attempts(sandbox) == []


def test_the_models_list_names_the_embedding_models(client):
    names = {model.id for model in client.models.list()}
    assert {SMALL, MIRROR, LARGE, GEMINI} <= names
