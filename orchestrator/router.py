"""Router.route(request) -> RoutingDecision: which model answers, why, and what comes next.

For now the router sends every request to the configured default model; the routing
issue replaces the choice with scoring under each strategy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from orchestrator.analysis import TaskAnalysis, analyze
from orchestrator.catalog import Catalog
from orchestrator.config import Settings
from orchestrator.providers.base import ChatRequest
from orchestrator.strategies import RoutingStrategy


class NoSuitableModel(Exception):
    """No model in the catalog can take this request; the message says why."""


@dataclass(frozen=True)
class RoutingDecision:
    chosen_provider: str
    chosen_model: str
    reasoning: str
    estimated_cost: float
    estimated_time: float
    fallback_models: list[tuple[str, str]] = field(default_factory=list)
    confidence: float = 0.5
    strategy: str = RoutingStrategy.BALANCED.value
    analysis: TaskAnalysis | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class Router:
    def __init__(self, catalog: Catalog, settings: Settings):
        self.catalog = catalog
        self.settings = settings

    def route(self, request: ChatRequest, strategy: RoutingStrategy = RoutingStrategy.BALANCED) -> RoutingDecision:
        name = self.settings.default_model_name
        if name not in self.catalog:
            raise NoSuitableModel(f"DEFAULT_MODEL_NAME {name!r} is not in the model catalog")
        model = self.catalog.get(name)
        analysis = analyze(request.messages, request.system_prompt, request.max_tokens)
        cost = (
            analysis.input_tokens * model.cost_per_1k_input
            + analysis.expected_output_tokens * model.cost_per_1k_output
        ) / 1000
        seconds = model.ttft + analysis.expected_output_tokens / model.tokens_per_second
        quality = model.quality_for("default")
        return RoutingDecision(
            chosen_provider=model.provider,
            chosen_model=model.model_name,
            reasoning=f"{strategy.value} strategy: cost: ${cost:.4f}, speed: {seconds:.1f}s, quality: {quality:.2f}",
            estimated_cost=round(cost, 6),
            estimated_time=round(seconds, 3),
            confidence=0.5,
            strategy=strategy.value,
            analysis=analysis,
        )
