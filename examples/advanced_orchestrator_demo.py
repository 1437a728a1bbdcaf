"""The brief's usage examples, run against a running orchestrator (`make run`).

    ORCHESTRATOR_URL=http://127.0.0.1:8000 ORCHESTRATOR_API_KEY=$(cat .run/demo-api-key) \
        python examples/advanced_orchestrator_demo.py
"""

from __future__ import annotations

import asyncio

from orchestrator import (
    AdvancedAIOrchestrator,
    ChatOrchestratorService,
    ModelCapabilities,
    ModelProvider,
    RoutingStrategy,
)


async def basic_usage(chat_service: ChatOrchestratorService) -> None:
    result = await chat_service.execute_chat_request(
        message="Explain machine learning", user_id=123, strategy=RoutingStrategy.BALANCED
    )
    print(f"Response: {result['response'].content[:80]}...")
    print(f"Model used: {result['model_used']}")
    print(f"Cost: ${result['response'].cost:.4f}")


async def handle_user_message(chat_service: ChatOrchestratorService, message: str, user_id: int) -> dict:
    """Example 1: simple chat integration with a per-request budget."""
    result = await chat_service.execute_chat_request(
        message=message, user_id=user_id, budget_limit=1.00, strategy=RoutingStrategy.BALANCED
    )
    return {
        "response": result["response"].content,
        "model": result["model_used"],
        "cost": result["response"].cost,
        "reasoning": result["routing_decision"]["reasoning"],
    }


async def generate_code(chat_service: ChatOrchestratorService, description: str, user_id: int) -> str:
    """Example 2: code generation with quality-focused routing."""
    result = await chat_service.execute_chat_request(
        message=f"Write Python code: {description}",
        user_id=user_id,
        strategy=RoutingStrategy.QUALITY_OPTIMAL,
        system_prompt="You are an expert Python developer. Write clean, well-documented code.",
        temperature=0.2,
    )
    return result["response"].content


class CustomOrchestrator(AdvancedAIOrchestrator):
    """Custom routing: domain experts first (the brief's "Custom Routing Logic")."""

    DOMAIN_MODELS = {
        "medical": "claude-sonnet-4-20250514",
        "code": "o3-mini",
        "creative": "gpt-4o",
        "analytical": "o3-mini",
    }

    async def custom_route_for_domain(self, task: str, domain: str, user_id: int):
        analysis = await self._analyze_task_complexity(task)
        preferred = self.DOMAIN_MODELS.get(domain)
        if preferred and analysis.complexity in ("complex", "expert"):
            return await self.route_request(task, user_id, model=preferred)
        return await self.route_request(task, user_id)


async def routing_examples() -> None:
    custom_model = {
        "custom_model": ModelCapabilities(
            provider=ModelProvider.CUSTOM,
            model_name="custom-model-v1",
            max_tokens=4096,
            cost_per_1k_input=0.001,
            cost_per_1k_output=0.003,
            supports_code=True,
            supports_reasoning=True,
            supports_streaming=True,
            context_window=32_768,
            quality={"default": 0.8},
        )
    }
    orchestrator = AdvancedAIOrchestrator(model_capabilities=custom_model)
    for task in (
        "What is the weather like?",
        "Explain the advantages of renewable energy",
        "Write a machine learning algorithm",
        "Analyze quantum computing's impact on cryptography",
    ):
        analysis = await orchestrator._analyze_task_complexity(task)
        decision = await orchestrator.route_request(task, user_id=123)
        print(f"{analysis.complexity:>8}  {decision.chosen_model:<28} {decision.reasoning}")
    custom = CustomOrchestrator()
    decision = await custom.custom_route_for_domain("Design a protocol to diagnose rare diseases", "medical", 123)
    print(f"medical domain -> {decision.chosen_model}")


async def main() -> None:
    chat_service = ChatOrchestratorService()
    await basic_usage(chat_service)
    answer = await handle_user_message(chat_service, "What is the weather like?", 123)
    print(f"Example 1: {answer['model']} (${answer['cost']:.4f}): {answer['reasoning']}")
    code = await generate_code(chat_service, "binary search over a sorted list", 123)
    print(f"Example 2: {len(code)} characters of code")
    await routing_examples()


if __name__ == "__main__":
    asyncio.run(main())
