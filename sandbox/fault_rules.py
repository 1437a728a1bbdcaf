"""Fault rules set through the control endpoint: which model fails how, and for how long."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from sandbox.faults import BATCH_LEVEL, Fault, FaultSyntaxError, fault

ANY_MODEL = "*"


@dataclass
class FaultRule:
    id: int
    model: str  # a model name or ANY_MODEL
    fault: Fault
    count: int | None  # requests it still applies to; None until cleared
    down_since: float | None = None  # down_for: when its first request came

    def as_dict(self) -> dict:
        return {"id": self.id, "model": self.model, "fault": self.fault.kind, "params": dict(self.fault.params),
                "count": self.count}


def rule_from_json(body) -> tuple[str, Fault, int | None]:
    """(model, fault, count) from `{"model", "fault", "count"?, ...the fault's parameters}`."""
    if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
        raise FaultSyntaxError('a rule is a JSON object with "fault" (and "model", "count", parameters)')
    params = {k: v for k, v in body.items() if k not in ("model", "fault", "count")}
    model, count = body.get("model", ANY_MODEL), body.get("count")
    if not isinstance(model, str) or not model:
        raise FaultSyntaxError('"model" must be a model name or "*"')
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise FaultSyntaxError('"count" must be a whole number of requests, at least 1')
    return model, fault(body["fault"], params), count


class FaultRules:
    """Rules in the order they were set; the first that applies to a request is used."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, model: str, fault: Fault, count: int | None = None) -> FaultRule:
        rule = FaultRule(next(self._ids), model, fault, count)
        self._rules.append(rule)
        return rule

    def all(self) -> list[FaultRule]:
        return list(self._rules)

    def clear(self) -> int:
        cleared = len(self._rules)
        self._rules.clear()
        return cleared

    def take(self, model: str, stream: bool, prefill: bool) -> Fault | None:
        """The fault for this request, if a rule has one; counts it against that rule."""
        for rule in list(self._rules):
            if rule.model not in (model, ANY_MODEL) or not rule.fault.applies_to(stream, prefill):
                continue
            if rule.fault.kind == "down_for" and self._outage_over(rule):
                self._rules.remove(rule)
                continue
            self._count(rule)
            return rule.fault
        return None

    def batch_faults(self, model: str) -> dict[str, Fault]:
        """The faults of a provider batch of `model` being created, by kind (the first rule of
        each kind); each counts against its rule."""
        found: dict[str, Fault] = {}
        for rule in list(self._rules):
            if rule.model in (model, ANY_MODEL) and rule.fault.kind in BATCH_LEVEL and rule.fault.kind not in found:
                found[rule.fault.kind] = rule.fault
                self._count(rule)
        return found

    def _count(self, rule: FaultRule) -> None:
        if rule.count is not None:
            rule.count -= 1
            if rule.count == 0:
                self._rules.remove(rule)

    def _outage_over(self, rule: FaultRule) -> bool:
        now = self._clock()
        if rule.down_since is None:
            rule.down_since = now
        return now - rule.down_since >= rule.fault["seconds"]
