"""Fault parsing (header and control JSON) and the fault rules' counts and outage windows."""

import pytest

from sandbox.fault_rules import FaultRules, rule_from_json
from sandbox.faults import Fault, FaultSyntaxError, fault, parse_fault_header


def test_header_gives_the_kind_and_converted_parameters():
    assert parse_fault_header("rate_limit; retry_after=2.5") == Fault("rate_limit", {"retry_after": 2.5})
    assert parse_fault_header("stream_stall; after_tokens=5, seconds=0.5") == Fault(
        "stream_stall", {"after_tokens": 5, "seconds": 0.5}
    )
    assert parse_fault_header("  server_error ") == Fault("server_error", {})


def test_missing_parameters_take_their_defaults_and_optional_ones_stay_absent():
    assert parse_fault_header("stream_cut").params == {"after_tokens": 10}
    assert parse_fault_header("rate_limit").params == {}
    assert parse_fault_header("content_filter").params == {"block": "response"}


@pytest.mark.parametrize(
    "header",
    ["", "explode", "rate_limit; retry_after", "rate_limit; wait=2", "stream_cut; after_tokens=two",
     "stream_stall; seconds=-1", "content_filter; block=everything", "down_for; seconds=3"],
)
def test_bad_headers_are_refused(header):
    with pytest.raises(FaultSyntaxError):
        parse_fault_header(header)


def test_stream_faults_apply_to_streams_and_reject_prefill_to_prefills():
    assert not fault("stream_cut", {}).applies_to(stream=False, prefill=False)
    assert fault("stream_cut", {}).applies_to(stream=True, prefill=False)
    assert not fault("reject_prefill", {}).applies_to(stream=False, prefill=False)
    assert fault("reject_prefill", {}).applies_to(stream=False, prefill=True)
    assert fault("server_error", {}).applies_to(stream=True, prefill=True)


def test_rule_json_carries_model_count_and_parameters():
    model, parsed, count = rule_from_json({"model": "gpt-4o", "fault": "rate_limit", "retry_after": 1, "count": 2})
    assert (model, parsed, count) == ("gpt-4o", Fault("rate_limit", {"retry_after": 1.0}), 2)
    assert rule_from_json({"fault": "down_for", "seconds": 3})[0] == "*"


@pytest.mark.parametrize("body", [[], {"model": "m"}, {"fault": "server_error", "count": 0},
                                  {"fault": "server_error", "count": "1"}, {"fault": "server_error", "model": ""}])
def test_bad_rule_json_is_refused(body):
    with pytest.raises(FaultSyntaxError):
        rule_from_json(body)


def test_a_counted_rule_applies_that_many_times_then_goes():
    rules = FaultRules()
    rules.add("gpt-4o", fault("server_error", {}), count=2)
    assert rules.take("gpt-4o", False, False).kind == "server_error"
    assert rules.take("other", False, False) is None
    assert rules.take("gpt-4o", False, False).kind == "server_error"
    assert rules.take("gpt-4o", False, False) is None and rules.all() == []


def test_the_first_applicable_rule_wins_and_star_matches_any_model():
    rules = FaultRules()
    rules.add("*", fault("stream_cut", {}))
    rules.add("*", fault("unavailable", {}))
    assert rules.take("a", stream=True, prefill=False).kind == "stream_cut"
    assert rules.take("b", stream=False, prefill=False).kind == "unavailable"
    assert rules.clear() == 2


def test_down_for_starts_at_its_first_request_and_ends_after_its_seconds():
    now = [100.0]
    rules = FaultRules(clock=lambda: now[0])
    rules.add("m", fault("down_for", {"seconds": 5}))
    now[0] = 200.0  # the window opens at the first matching request, not when the rule was set
    assert rules.take("m", False, False).kind == "down_for"
    now[0] = 204.9
    assert rules.take("m", False, False).kind == "down_for"
    now[0] = 205.0
    assert rules.take("m", False, False) is None and rules.all() == []
