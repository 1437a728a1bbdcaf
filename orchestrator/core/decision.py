"""A routing decision as it is written down: POST /chat/route's answer, a streamed request's
`decision` event, the chain a worker carries and a result's `routing_decision`.

The router's RoutingDecision (orchestrator/core/router.py) holds what the ranking was made
of and writes itself as a `Decision` (`RoutingDecision.written`); the API's schemas of a
decision are derived from these classes (api/dataclass_schema.py). `documented_as` names a
class's schema where its name in the API predates the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.core.types import LEFT_OUT_WHEN_EMPTY, doc


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a decision says of its task analysis (TaskAnalysis.summary, orchestrator/core/analysis.py)."""

    complexity: str = field(metadata=doc("simple, moderate, complex or expert"))
    complexity_score: float = field(metadata=doc("In [0, 1]"))
    task_type: str
    input_tokens: int
    expected_output_tokens: int
    needs: tuple[str, ...] = field(
        metadata=doc("code, reasoning, long_context, vision, tools, structured_output, logprobs"))

    def to_json(self) -> dict:
        return {"complexity": self.complexity, "complexity_score": self.complexity_score, "task_type": self.task_type,
                "input_tokens": self.input_tokens, "expected_output_tokens": self.expected_output_tokens,
                "needs": list(self.needs)}

    @classmethod
    def from_json(cls, data: dict) -> Analysis:
        return cls(data["complexity"], data["complexity_score"], data["task_type"], data["input_tokens"],
                   data["expected_output_tokens"], tuple(data["needs"]))


@dataclass(frozen=True, slots=True)
class PredictedQuality:
    """The learned router's reading of the prompt (orchestrator/core/routing_model), with the
    tiers of the chain's models: what an outcome of one of them is measured against."""

    weak: float = field(metadata=doc("Predicted quality (0..1) of the weak reference model (Mixtral-8x7B class)"))
    strong: float = field(metadata=doc("Predicted quality (0..1) of the strong reference model (GPT-4 class)"))
    gap: float = field(metadata=doc("The routing score: the predicted strong-minus-weak gap and a length term"))
    percentile: float = field(metadata=doc("Of the gap among the training prompts', in [0, 1]"))
    strong_gain: float = field(metadata=doc("The calibrated gap: what a GPT-4-class model adds on this prompt"))
    cluster: int = field(metadata=doc("The prompt's neighbourhood, for online learning"))
    tiers: dict[str, float] = field(metadata=doc("Each model of the chain's tier: 0 the weak reference, 1 the strong"))

    def to_json(self) -> dict:
        return {"weak": self.weak, "strong": self.strong, "gap": self.gap, "percentile": self.percentile,
                "strong_gain": self.strong_gain, "cluster": self.cluster, "tiers": self.tiers}

    @classmethod
    def from_json(cls, data: dict) -> PredictedQuality:
        return cls(data["weak"], data["strong"], data["gap"], data["percentile"], data["strong_gain"], data["cluster"],
                   data["tiers"])


@dataclass(frozen=True, slots=True)
class ListedCandidate:
    """A model the router ranked, as POST /chat/route lists it."""

    documented_as = "Candidate"

    model: str
    provider: str
    predicted_quality: float = field(metadata=doc("In [0, 1], for this prompt"))
    tier: float | None = field(metadata=doc("0 weak reference (Mixtral-8x7B), 1 strong (GPT-4)"))
    estimated_cost: float
    estimated_time: float
    score: float = field(metadata=doc("The strategy's score; candidates are listed best first"))

    def to_json(self) -> dict:
        return {"model": self.model, "provider": self.provider, "predicted_quality": self.predicted_quality,
                "tier": self.tier, "estimated_cost": self.estimated_cost, "estimated_time": self.estimated_time,
                "score": self.score}

    @classmethod
    def from_json(cls, data: dict) -> ListedCandidate:
        return cls(data["model"], data["provider"], data["predicted_quality"], data.get("tier"), data["estimated_cost"],
                   data["estimated_time"], data["score"])


@dataclass(frozen=True, slots=True)
class Decision:
    """Which model answers, why, and the fallbacks after it. `candidates` only in POST
    /chat/route's answer: an executed request does not carry them."""

    documented_as = "RoutingDecision"

    chosen_provider: str
    chosen_model: str
    reasoning: str
    estimated_cost: float
    estimated_time: float
    fallback_models: tuple[tuple[str, str], ...]  # (provider, model), in the order to try them
    confidence: float
    strategy: str
    analysis: Analysis | None
    why: str = field(metadata=doc("Why the chosen model won"))
    prediction: PredictedQuality | None = field(metadata=doc("The learned router's reading of the prompt"))
    candidates: tuple[ListedCandidate, ...] = field(default=(), metadata=LEFT_OUT_WHEN_EMPTY)

    @property
    def complexity(self) -> str | None:
        return self.analysis.complexity if self.analysis is not None else None

    def to_json(self) -> dict:
        data = {
            "chosen_provider": self.chosen_provider, "chosen_model": self.chosen_model, "reasoning": self.reasoning,
            "estimated_cost": self.estimated_cost, "estimated_time": self.estimated_time,
            "fallback_models": [list(pair) for pair in self.fallback_models], "confidence": self.confidence,
            "strategy": self.strategy, "analysis": self.analysis.to_json() if self.analysis is not None else None,
            "why": self.why, "prediction": self.prediction.to_json() if self.prediction is not None else None,
        }
        if self.candidates:
            data["candidates"] = [candidate.to_json() for candidate in self.candidates]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Decision:
        analysis, prediction = data["analysis"], data["prediction"]
        return cls(
            data["chosen_provider"], data["chosen_model"], data["reasoning"], data["estimated_cost"],
            data["estimated_time"], tuple((provider, model) for provider, model in data["fallback_models"]),
            data["confidence"], data["strategy"], None if analysis is None else Analysis.from_json(analysis),
            data["why"], None if prediction is None else PredictedQuality.from_json(prediction),
            tuple(map(ListedCandidate.from_json, data.get("candidates") or ())),
        )
