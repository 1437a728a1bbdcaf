"""The executor (orchestrator/execution/) driven without a worker: its stores on fakeredis,
its providers scripted in memory. What the Celery task receives is the outcome."""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict

import fakeredis
import pytest
import redis

from orchestrator.config import load_settings
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import ChatJob, Status
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ChatRequest, Image, Message, StreamDelta, StreamEnd, Usage
from orchestrator.execution.outcomes import FINISHED, RetryLater
from orchestrator.runtime.services import Services

FIRST, SECOND = "gpt-4o-mini", "claude-3-5-haiku-20241022"


class ScriptedProvider:
    """Answers each call with the next entry of its model's script: a text, or an error kind."""

    sandbox = True

    def __init__(self, scripts: dict[str, list], calls: list[str]):
        self.scripts, self.calls = scripts, calls

    def stream(self, request: ChatRequest, timeout: float):
        self.calls.append(request.model)
        step = self.scripts[request.model].pop(0)
        if isinstance(step, ErrorKind):
            raise ProviderError(step, f"scripted {step.value}", provider="scripted", model=request.model)
        if isinstance(step, tuple):  # ("cut", text): part of an answer, then the connection breaks
            yield StreamDelta(step[1])
            raise ProviderError(ErrorKind.CONNECTION, "scripted cut", provider="scripted", model=request.model)
        yield StreamDelta(step)
        yield StreamEnd("stop", Usage(input_tokens=10, output_tokens=5), "scripted-id")

    def complete(self, request: ChatRequest, timeout: float):
        raise AssertionError("every bundled model streams")


class ScriptedRegistry:
    def __init__(self):
        self.scripts: dict[str, list] = defaultdict(list)
        self.calls: list[str] = []

    def for_model(self, model):
        return ScriptedProvider(self.scripts, self.calls)


def scripted_services(catalog: Catalog) -> tuple[Services, ScriptedRegistry]:
    settings = dataclasses.replace(load_settings(), redis_prefix="t:", cost_tracking_enabled=True)
    services = Services(settings=settings, redis=fakeredis.FakeRedis(decode_responses=True), catalog=catalog)
    registry = ScriptedRegistry()
    services.__dict__["providers"] = registry  # the cached property, given before the executor is built
    return services, registry


@pytest.fixture
def env():
    return scripted_services(Catalog.load(None))


def _job(**fields) -> ChatJob:
    return ChatJob(messages=(Message("user", "hello"),), **fields)


def _run_to_the_end(services, request_id: str, job: ChatJob):
    """Every retry as (the model it goes on with, its wait), and the last outcome; the chain
    goes through JSON between two runs, as in the task's arguments."""
    retries, outcome = [], services.executor.run(request_id, job)
    while isinstance(outcome, RetryLater):
        retries.append((outcome.chain.current, outcome.delay))
        outcome = services.executor.run(request_id, job, Chain.from_dict(outcome.chain.as_dict()), outcome.slot)
    return retries, outcome


def test_an_answer_is_published_and_billed_once(env):
    services, registry = env
    registry.scripts[FIRST] = ["hi there"]
    services.requests.create("req_ok", "admin", "chat")
    assert services.executor.run("req_ok", _job(models=(FIRST, SECOND))) == FINISHED
    record = services.requests.get("req_ok")
    assert record["status"] == Status.COMPLETED
    assert record["result"]["response"]["content"] == "hi there" and record["result"]["model_used"] == FIRST
    spent, held = services.budgets.usage("admin")
    assert spent == pytest.approx(record["result"]["response"]["cost"], abs=2e-6) and spent > 0 and held == 0
    # Delivered again, the task finds it finished and calls no one.
    assert services.executor.run("req_ok", _job(models=(FIRST, SECOND))) == FINISHED
    assert registry.calls == [FIRST]


def test_a_callers_list_of_models_skips_those_that_cannot_take_the_request(env):
    """An image for models=[gpt-4o-mini, gpt-3.5-turbo (no vision), gemini]: after the first
    fails, the chain goes on with gemini; gpt-3.5-turbo is never called."""
    services, registry = env
    registry.scripts[FIRST] = [ErrorKind.AUTH]
    registry.scripts["gemini-2.5-flash"] = ["a cat"]
    job = ChatJob(messages=(Message("user", "What is this?", images=(Image("https://example.com/cat.png"),)),),
                  models=(FIRST, "gpt-3.5-turbo", "gemini-2.5-flash"))
    services.requests.create("req_vision", "admin", "chat")
    retries, outcome = _run_to_the_end(services, "req_vision", job)
    assert outcome == FINISHED and registry.calls == [FIRST, "gemini-2.5-flash"]
    assert services.requests.get("req_vision")["result"]["model_used"] == "gemini-2.5-flash"


class WorkerKilled(BaseException):
    """The worker dies (as by SIGKILL) at this point: nothing after it runs."""


def test_usage_a_killed_worker_did_not_count_is_counted_once_by_the_redelivered_task(env, monkeypatch):
    services, registry = env
    registry.scripts[FIRST] = ["hi there"]
    services.requests.create("req_killed", "admin", "chat")
    counting = services.accounting.after_settlement

    def die(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(services.accounting, "after_settlement", die)
    with pytest.raises(WorkerKilled):  # billed, then killed before usage was counted
        services.executor.run("req_killed", _job(models=(FIRST,)))
    assert services.budgets.usage("admin")[0] > 0 and services.usage.month("admin") == []
    monkeypatch.setattr(services.accounting, "after_settlement", counting)
    for _ in range(2):  # delivered again, twice: counted once, no provider called
        assert services.executor.run("req_killed", _job(models=(FIRST,))) == FINISHED
    (row,) = services.usage.month("admin")
    assert row.requests == 1 and row.cost == pytest.approx(services.budgets.usage("admin")[0], abs=2e-6)
    assert registry.calls == [FIRST]


def test_a_server_error_retries_the_same_model_later_then_falls_over(env):
    services, registry = env
    registry.scripts[FIRST] = [ErrorKind.SERVER_ERROR, ErrorKind.SERVER_ERROR]
    registry.scripts[SECOND] = ["from the fallback"]
    services.requests.create("req_retry", "admin", "chat")
    retries, last = _run_to_the_end(services, "req_retry", _job(models=(FIRST, SECOND)))
    assert last == FINISHED
    assert [(model, delay > 0) for model, delay in retries] == [(FIRST, True), (SECOND, False)]
    assert registry.calls == [FIRST, FIRST, SECOND]
    result = services.requests.get("req_retry")["result"]
    assert result["model_used"] == SECOND
    assert [a["error"] for a in result["attempts"]] == ["server_error", "server_error", None]


def test_a_bad_request_reaches_the_caller_without_a_fallback(env):
    services, registry = env
    registry.scripts[FIRST] = [ErrorKind.BAD_REQUEST]
    services.requests.create("req_bad", "admin", "chat")
    assert services.executor.run("req_bad", _job(models=(FIRST, SECOND))) == FINISHED
    record = services.requests.get("req_bad")
    assert record["status"] == Status.FAILED and record["result"]["status"] == 400
    assert registry.calls == [FIRST]
    assert services.budgets.usage("admin") == (0.0, 0.0)  # the reservation released, nothing spent


def test_a_request_past_its_deadline_ends_with_a_504_without_a_call(env):
    services, registry = env
    services.requests.create("req_late", "admin", "chat")
    job = _job(models=(FIRST,), deadline=time.time() - 1)
    assert services.executor.run("req_late", job) == FINISHED
    assert services.requests.get("req_late")["result"]["code"] == "gateway_timeout"
    assert registry.calls == []


def test_a_job_from_a_newer_release_is_refused():
    from orchestrator.core.job import JOB_VERSION, UnknownJobVersion

    with pytest.raises(UnknownJobVersion):
        ChatJob.from_json({"messages": [], "version": JOB_VERSION + 1})


def test_a_job_survives_its_json_round_trip():
    job = _job(models=(FIRST, SECOND), stop=("END",), owner="usr_1", stream=True, deadline=12.5)
    assert ChatJob.from_json(job.to_json()) == job


def test_an_answer_in_hand_waits_out_a_redis_outage_before_it_is_published(env, monkeypatch):
    services, registry = env
    registry.scripts[FIRST] = ["kept through the outage"]
    services.requests.create("req_outage", "admin", "chat")
    real, failures = services.ledger.complete, [redis.ConnectionError("Redis went away")] * 3

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(services.ledger, "complete", flaky)
    monkeypatch.setattr("orchestrator.execution.settlement.time.sleep", lambda seconds: None)
    assert services.executor.run("req_outage", _job(models=(FIRST,))) == FINISHED
    record = services.requests.get("req_outage")
    assert record["status"] == Status.COMPLETED and record["result"]["response"]["content"] == "kept through the outage"
    assert services.budgets.usage("admin")[0] > 0 and not failures
    assert registry.calls == [FIRST]  # the provider was not asked twice


def test_a_callers_models_list_naming_a_model_without_a_full_price_is_refused_under_a_budget():
    unpriced = ModelCapabilities(provider="openai", model_name="no-such-model-anywhere", max_tokens=1000,
                                 cost_per_1k_input=0.001, cost_per_1k_output=0.002)
    bundled = Catalog.load(None)
    services, registry = scripted_services(Catalog({**bundled.models, unpriced.model_name: unpriced}, bundled.providers))
    services.requests.create("req_unpriced", "admin", "chat")
    assert services.executor.run("req_unpriced", _job(models=(FIRST, unpriced.model_name))) == FINISHED
    result = services.requests.get("req_unpriced")["result"]
    assert (result["status"], result["code"]) == (402, "budget_exceeded") and "lacks an input or output price" in result["message"]
    assert registry.calls == [] and services.budgets.usage("admin") == (0.0, 0.0)


def test_admission_names_the_models_the_reservation_covers(env):
    services, registry = env
    registry.scripts[FIRST] = [ErrorKind.SERVER_ERROR]
    services.requests.create("req_covered", "admin", "chat")
    outcome = services.executor.run("req_covered", _job(models=(FIRST, SECOND)))
    assert isinstance(outcome, RetryLater)
    covered = outcome.chain.affordable
    assert covered is not None and {FIRST, SECOND} <= set(covered)
    dearest = max(services.catalog, key=lambda m: m.cost_per_1k_output)
    assert dearest.model_name not in covered  # a pricier model may not join this chain later


def _cut_then_continued(services, registry, request_id: str, budget: float):
    """A stream cut after a long first part on FIRST (no prefill), continued on SECOND."""
    part = "x" * 40_000
    registry.scripts[FIRST] = [("cut", part), ("cut", part)]
    registry.scripts[SECOND] = [" and the end."]
    services.users.default_budget = budget  # the admin's monthly budget
    services.requests.create(request_id, "admin", "chat")
    return _run_to_the_end(services, request_id, _job(models=(FIRST, SECOND), stream=True, max_tokens=16))


def _worst(services, model: str, texts: list[str]) -> float:
    from orchestrator.core.analysis import max_input_tokens

    return services.catalog.get(model).worst_case_cost(max_input_tokens(texts, ""), 16)


def test_a_continuation_raises_the_reservation_to_what_it_may_cost(env, monkeypatch):
    services, registry = env
    raised = []
    real = services.budgets.raise_to
    monkeypatch.setattr(services.budgets, "raise_to", lambda *args: raised.append(args[3]) or real(*args))
    _, last = _cut_then_continued(services, registry, "req_continued", budget=1000.0)
    assert last == FINISHED
    assert services.requests.get("req_continued")["status"] == Status.COMPLETED
    continuing = _worst(services, SECOND, ["hello", "x" * 40_000])
    assert raised and raised[-1] == pytest.approx(continuing)  # the hold covered the continuation
    assert services.budgets.usage("admin")[1] == 0  # and was released at settlement


def test_a_continuation_the_budget_cannot_cover_ends_incomplete_with_a_402(env):
    services, registry = env
    first = max(_worst(services, m, ["hello"]) for m in (FIRST, SECOND))
    continuing = _worst(services, SECOND, ["hello", "x" * 40_000])
    assert continuing > first
    _, last = _cut_then_continued(services, registry, "req_uncovered", budget=(first + continuing) / 2)
    assert last == FINISHED
    result = services.requests.get("req_uncovered")["result"]
    assert (result["status"], result["code"]) == (402, "budget_exceeded") and "incomplete" in result["message"]
    assert registry.calls.count(SECOND) == 0  # the continuation was never paid for
    spent, held = services.budgets.usage("admin")
    assert spent == 0 and held == 0


def test_a_batch_item_waiting_for_a_rate_limit_slot_keeps_its_hold_as_long_as_its_wait(monkeypatch):
    from orchestrator.core.catalog import ModelLimits
    from orchestrator.execution.rate_slots import WaitForSlot
    from orchestrator.execution.settlement import RESERVATION_GRACE
    from orchestrator.store.budgets import month_of

    catalog = Catalog.load(None)
    limited = dataclasses.replace(catalog.get(FIRST), limits=ModelLimits(rpm=1))
    services, _ = scripted_services(Catalog({**catalog.models, FIRST: limited}, catalog.providers))
    item = "bat_" + "0" * 32 + "-0"
    services.requests.create(item, "admin", "chat")
    monkeypatch.setattr(services.executor.rate_slots, "take", lambda *args: WaitForSlot(600.0, None, extends_deadline=True))
    job = _job(models=(FIRST,), batch="bat_" + "0" * 32, deadline=time.time() + 60)
    outcome = services.executor.run(item, job)
    assert isinstance(outcome, RetryLater) and outcome.delay == 600.0
    assert outcome.chain.deadline >= job.deadline + 600  # the wait does not count against its time budget
    _, _, until = services.budgets.keys("admin", month_of(time.time()))
    held_until = services.redis.zscore(until, item)
    assert held_until == pytest.approx(outcome.chain.deadline + RESERVATION_GRACE, abs=1)  # moved with it


def test_redis_away_is_raised_for_the_task_to_requeue_not_recorded_as_a_failure(env, monkeypatch):
    """A read that times out while Redis fails over is no reason to end the request: the
    executor lets the outage through (the task adapter requeues: workers/tasks.py) and writes
    no failure, and the request runs again from where its records stand."""
    services, registry = env
    registry.scripts[FIRST] = ["hi there"]
    services.requests.create("req_away", "admin", "chat")
    reads = services.executor._read_inputs

    def timed_out(*args, **kwargs):
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(services.executor, "_read_inputs", timed_out)
    with pytest.raises(redis.TimeoutError):
        services.executor.run("req_away", _job(models=(FIRST,)))
    assert services.requests.get("req_away")["status"] == Status.QUEUED
    monkeypatch.setattr(services.executor, "_read_inputs", reads)
    assert services.executor.run("req_away", _job(models=(FIRST,))) == FINISHED
    assert services.requests.get("req_away")["status"] == Status.COMPLETED and registry.calls == [FIRST]
