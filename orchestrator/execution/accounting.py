"""What the worker does around a request besides executing it: the inputs of routing that
were learned (learned defaults, rated quality), the usage counted after settlement, and the
alerts that follow (budget thresholds, cost anomalies, a circuit opening).

Each hook costs at most one round trip in the common case and never raises: accounting
must not fail a request that was answered (a failure is logged).
"""

from __future__ import annotations

import dataclasses
import logging

from orchestrator.core.evidence import RatedQuality
from orchestrator.core.job import ADMIN_ID
from orchestrator.core.strategies import Preferences, RoutingStrategy
from orchestrator.core.types import Usage as Tokens
from orchestrator.store.alerts import Alert, Alerts
from orchestrator.store.circuits import Circuits
from orchestrator.store.learning import Learning
from orchestrator.store.usage import Usage
from orchestrator.store.users import User, Users

log = logging.getLogger(__name__)


class Accounting:
    def __init__(self, *, learning: Learning, usage: Usage, users: Users, alerts: Alerts, circuits: Circuits,
                 cost_tracking: bool):
        self.learning, self.usage, self.users, self.alerts = learning, usage, users, alerts
        self.circuits, self.cost_tracking = circuits, cost_tracking

    def routing_inputs(
        self, owner: str, user: User | None, strategy: str | None
    ) -> tuple[Preferences | None, dict[str, dict[str, RatedQuality]] | None]:
        """What routing takes from users beside the request: the preferences (the user's, with
        their learned defaults as preferred models for the levels where they set none, under
        user_preference only) and every model's rated quality per task type. At most one round
        trip (orchestrator/store/learning.py caches the ratings for a few seconds)."""
        preferences = user.preferences if user else None
        learn_for = owner if (user is not None and owner != ADMIN_ID
                              and strategy == RoutingStrategy.USER_PREFERENCE.value) else None
        try:
            learned, quality = self.learning.for_routing(learn_for)
        except Exception:
            log.exception("could not read learned preferences")
            return preferences, None
        if learned and user is not None:
            explicit = dict(user.preferences.preferred_models or {})
            merged = {**learned, **{level: models for level, models in explicit.items() if models}}
            preferences = dataclasses.replace(user.preferences, preferred_models=merged)
        return preferences, quality

    def after_settlement(self, request_id: str, owner: str, model: str, cost: float, usage: Tokens,
                         complexity: str | None, attempts: list[dict]) -> list[Alert]:
        """Count a settled request for its user, once, and fire the alerts it made due."""
        first_try = len(attempts) == 1 and attempts[0].get("error") is None
        try:
            settled = self.usage.settled(
                request_id, owner, model, complexity or "unknown",
                cost if self.cost_tracking else 0.0, usage.input_tokens, usage.output_tokens, first_try,
                self.users.user_key(owner),
            )
            if settled is not None and (settled.crossed or settled.anomaly):
                return self.usage.alert(owner, settled)
        except Exception:
            log.exception("usage accounting failed for a settled request of %s", owner)
        return []

    def after_refusal(self, owner: str, limit: float) -> None:
        """A request refused for the month's budget: the 100 % alert, once, past the 80 % one."""
        try:
            user = self.users.get(owner) if owner != ADMIN_ID else None
            self.usage.refused(owner, user.name if user else None, limit)
        except Exception:
            log.exception("budget refusal alert failed for %s", owner)

    def circuits_opened(self, model: str, provider: str, reply, reason: str) -> None:
        """A model's (or its provider's) circuit just opened from closed: a model outage alert,
        once per opening (the circuit's own Lua says it opened, exactly once)."""
        for scope, name in self.circuits.opened(model, provider, reply):
            try:
                state = self.circuits.state_of(scope, name)
                opened_at = state.get("opened_at", "")
                alert = Alert(
                    kind="model_outage", severity="critical", subject=f"{scope}:{name}",
                    message=f"The {scope} {name}'s circuit opened: requests go to other models until it recovers "
                            f"(last error: {reason})",
                    details={"scope": scope, "name": name, "model": model, "provider": provider, "last_error": reason,
                             "opened_at": float(opened_at) if opened_at else None,
                             "until": float(state["until"]) if state.get("until") else None},
                )
                self.alerts.fire(alert, f"circuit:{scope}:{name}:{opened_at}", ttl=86400)
            except Exception:
                log.exception("circuit alert failed for %s %s", scope, name)
