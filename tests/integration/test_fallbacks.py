"""Execution that survives providers: each retry rule, read from the sandbox's attempt log
(how many attempts each model saw, and how far apart), with a real worker."""

from __future__ import annotations

from itertools import pairwise

import pytest
import requests

EXECUTE = "/api/v1/orchestrator/chat/execute"
PRIMARY = "gpt-4o-mini"  # pinned; its fallbacks are other providers' models


pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def fault(sandbox: str, kind: str, model: str = PRIMARY, **params) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": kind, **params},
                  timeout=5).raise_for_status()


def seen(sandbox: str, model: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": model}, timeout=5).json()["attempts"]


def execute(client, **extra):
    reply = client.post(EXECUTE, json={"message": "Explain the advantages of renewable energy", "model": PRIMARY,
                                       **extra})
    return reply.status_code, reply.get_json()


def gaps(attempts: list[dict]) -> list[float]:
    return [b["time"] - a["time"] for a, b in pairwise(attempts)]


def test_a_500_once_is_retried_on_the_same_model_after_a_backoff(client, sandbox):
    fault(sandbox, "server_error", count=1)
    status, body = execute(client)
    assert status == 200, body
    assert body["model_used"] == PRIMARY
    assert [a["error"] for a in body["attempts"]] == ["server_error", None]
    primary = seen(sandbox, PRIMARY)
    assert len(primary) == 2 and gaps(primary)[0] >= 0.25
    # Billed: the answering attempt's usage, priced once.
    usage = body["response"]["usage"]
    assert body["response"]["cost"] == pytest.approx(
        (usage["input_tokens"] * 0.15 + usage["output_tokens"] * 0.6) / 1e6, abs=1e-6)


def test_a_persistent_503_is_retried_once_then_falls_over(client, sandbox):
    fault(sandbox, "unavailable")
    status, body = execute(client)
    assert status == 200, body
    assert body["model_used"] != PRIMARY
    assert [a["error"] for a in body["attempts"]] == ["overloaded", "overloaded", None]
    assert len(seen(sandbox, PRIMARY)) == 2
    fallback = body["routing_decision"]["fallback_models"][0]
    assert body["model_used"] == fallback[1] and fallback[0] != "openai"


def test_a_short_retry_after_is_honoured(client, sandbox):
    fault(sandbox, "rate_limit", retry_after=1, count=1)
    status, body = execute(client)
    assert status == 200 and body["model_used"] == PRIMARY
    primary = seen(sandbox, PRIMARY)
    assert len(primary) == 2 and gaps(primary)[0] >= 1.0


def test_a_long_retry_after_falls_over_at_once(client, sandbox):
    fault(sandbox, "rate_limit", retry_after=30)
    status, body = execute(client)
    assert status == 200 and body["model_used"] != PRIMARY
    assert len(seen(sandbox, PRIMARY)) == 1


def test_a_429_without_retry_after_backs_off_once_then_falls_over(client, sandbox):
    fault(sandbox, "rate_limit")
    status, body = execute(client)
    assert status == 200 and body["model_used"] != PRIMARY
    primary = seen(sandbox, PRIMARY)
    assert len(primary) == 2 and gaps(primary)[0] >= 0.5


def test_a_connection_reset_is_retried_once_then_falls_over(client, sandbox):
    fault(sandbox, "reset")
    status, body = execute(client)
    assert status == 200 and body["model_used"] != PRIMARY
    assert [a["error"] for a in body["attempts"][:2]] == ["connection", "connection"]


def test_a_silent_model_times_out_and_is_not_asked_again(client, sandbox):
    fault(sandbox, "no_response")
    status, body = execute(client, first_token_timeout=0.5)
    assert status == 200 and body["model_used"] != PRIMARY
    assert len(seen(sandbox, PRIMARY)) == 1
    assert body["attempts"][0]["error"] == "timeout" and body["attempts"][0]["duration"] < 2


def test_a_slow_first_token_falls_over(client, sandbox):
    fault(sandbox, "slow_first_token", seconds=3)
    status, body = execute(client, first_token_timeout=0.5)
    assert status == 200 and body["model_used"] != PRIMARY
    assert body["attempts"][0]["error"] == "timeout"


def test_a_stalled_stream_is_not_passed_off_as_an_answer(client, sandbox):
    fault(sandbox, "stream_stall", after_tokens=3, seconds=3)
    status, body = execute(client, first_token_timeout=0.5)
    assert status == 200 and body["model_used"] != PRIMARY
    assert body["attempts"][0]["error"] == "timeout"


def test_a_cut_stream_is_not_passed_off_as_an_answer(client, sandbox):
    fault(sandbox, "stream_cut", after_tokens=3)
    status, body = execute(client)
    assert status == 200 and body["model_used"] != PRIMARY
    assert body["attempts"][0]["error"] in ("server_error", "connection")


def test_context_overflow_goes_to_a_larger_context_never_the_same_model(client, sandbox):
    fault(sandbox, "context_length")
    status, body = execute(client)
    assert status == 200, body
    assert len(seen(sandbox, PRIMARY)) == 1
    from orchestrator.core.catalog import Catalog

    catalog = Catalog.load()
    assert catalog.get(body["model_used"]).context_window > catalog.get(PRIMARY).context_window


def test_a_content_filter_reaches_the_caller_as_a_4xx_without_retry_or_fallback(client, sandbox):
    fault(sandbox, "content_filter")
    status, body = execute(client)
    assert status == 422
    assert body["error"]["code"] == "content_filtered"
    assert len(seen(sandbox, PRIMARY)) == 1
    all_attempts = requests.get(f"{sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]
    assert len(all_attempts) == 1


def test_when_every_model_fails_the_caller_gets_the_last_error_and_the_attempts(client, sandbox):
    fault(sandbox, "server_error", model="*")
    status, body = execute(client, timeout=15)
    assert status == 502
    error = body["error"]
    assert error["code"] == "server_error" and "after 6 attempts" in error["message"]
    attempts = error["details"]["attempts"]
    assert len({a["model"] for a in attempts}) == 3 and all(a["error"] == "server_error" for a in attempts)
    # No model saw more than two attempts for this request.
    assert max(len(seen(sandbox, model)) for model in {a["model"] for a in attempts}) == 2


def test_a_request_never_outlives_its_time_budget(client, sandbox):
    fault(sandbox, "no_response", model="*")
    status, body = execute(client, timeout=2, first_token_timeout=1.5)
    assert status == 504
    assert body["error"]["code"] in ("gateway_timeout", "timeout")
    assert sum(a["duration"] for a in body["error"]["details"]["attempts"]) < 2.5
