"""The faults the sandbox plays on demand, their parameters, and the header that asks for one.

Header syntax: `x-sandbox-fault: <kind>[; key=value ...]`, e.g.
`x-sandbox-fault: stream_stall; after_tokens=5; seconds=0.5` (`;`, `,` or spaces separate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FAULT_HEADER = "x-sandbox-fault"

# The faults answered with a provider error, and the error's kind (sandbox/wire.py).
FAULT_ERRORS = {
    "rate_limit": "rate_limit",
    "server_error": "server_error",
    "unavailable": "overloaded",
    "down_for": "overloaded",
    "context_length": "context_length",
    "content_filter": "content_filter",
    "reject_prefill": "invalid_request",
}

# kind -> {parameter: (type, default)}; a default of None means the parameter is optional.
KINDS: dict[str, dict[str, tuple[type, object]]] = {
    "rate_limit": {"retry_after": (float, None)},
    "server_error": {},
    "unavailable": {},
    "reset": {},
    "no_response": {},
    "slow_first_token": {"seconds": (float, 10.0)},
    "stream_cut": {"after_tokens": (int, 10)},
    "stream_stall": {"after_tokens": (int, 10), "seconds": (float, 5.0)},
    "malformed_chunk": {"after_tokens": (int, 10)},
    "no_done": {},
    "slow_stream": {"tokens_per_second": (float, 10.0)},
    "context_length": {},
    "content_filter": {"block": (str, "response")},  # Gemini: "prompt" blocks the prompt, not the answer
    "reject_prefill": {},
    "down_for": {"seconds": (float, 30.0)},
    "invalid_output": {},  # structured answers and tool-call arguments that do not validate
    # A provider batch's own course (sandbox/batch_jobs.py), matched when a batch is created:
    "batch_delay": {"seconds": (float, 1.0)},  # its items are answered over this many seconds
    "batch_expire": {"after_items": (int, 0)},  # it expires at the end of its delay, this many items answered
}
CHOICES = {("content_filter", "block"): ("response", "prompt")}
STREAM_ONLY = frozenset({"stream_cut", "stream_stall", "malformed_chunk", "no_done", "slow_stream"})
RULE_ONLY = frozenset({"down_for", "batch_delay", "batch_expire"})  # they need state across requests
BATCH_LEVEL = frozenset({"batch_delay", "batch_expire"})  # a provider batch's, never one call's


class FaultSyntaxError(ValueError):
    """A fault asked for by header or rule is unknown or has a bad parameter."""


@dataclass(frozen=True)
class Fault:
    kind: str
    params: dict = field(default_factory=dict)

    def __getitem__(self, name: str):
        return self.params[name]

    def applies_to(self, stream: bool, prefill: bool) -> bool:
        """Stream faults need a stream; reject_prefill needs an assistant prefill; a provider
        batch's own faults never apply to a call (FaultRules.batch_faults takes them)."""
        if self.kind in BATCH_LEVEL:
            return False
        if self.kind in STREAM_ONLY:
            return stream
        if self.kind == "reject_prefill":
            return prefill
        return True


def fault(kind: str, raw_params: dict) -> Fault:
    """A fault of `kind` with its parameters converted and defaults filled in."""
    if kind not in KINDS:
        raise FaultSyntaxError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
    spec = KINDS[kind]
    unknown = set(raw_params) - set(spec)
    if unknown:
        raise FaultSyntaxError(f"fault {kind!r} takes {sorted(spec) or 'no parameters'}, not {sorted(unknown)}")
    params = {}
    for name, (kind_of_value, default) in spec.items():
        value = raw_params.get(name, default)
        if value is not None:
            params[name] = _converted(kind, name, kind_of_value, value)
    return Fault(kind, params)


def _converted(kind: str, name: str, kind_of_value: type, value):
    try:
        converted = kind_of_value(value)
    except (TypeError, ValueError):
        raise FaultSyntaxError(f"fault {kind!r}: {name}={value!r} is not a {kind_of_value.__name__}") from None
    if kind_of_value is not str and converted < 0:
        raise FaultSyntaxError(f"fault {kind!r}: {name} must not be negative")
    if converted not in CHOICES.get((kind, name), (converted,)):
        raise FaultSyntaxError(f"fault {kind!r}: {name} is one of {CHOICES[kind, name]}, not {converted!r}")
    return converted


def parse_fault_header(value: str) -> Fault:
    tokens = [token for token in re.split(r"[;,\s]+", value) if token]
    if not tokens:
        raise FaultSyntaxError(f"{FAULT_HEADER} is empty")
    kind, *pairs = tokens
    raw = {}
    for pair in pairs:
        name, sep, raw_value = pair.partition("=")
        if not sep:
            raise FaultSyntaxError(f"{FAULT_HEADER}: expected key=value, got {pair!r}")
        raw[name] = raw_value
    parsed = fault(kind, raw)
    if parsed.kind in RULE_ONLY:
        raise FaultSyntaxError(f"{kind} lasts across requests: set it with POST /_sandbox/faults, not a header")
    return parsed
