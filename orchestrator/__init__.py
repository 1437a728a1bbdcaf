"""AI Model Orchestrator: the domain core, and the brief's Python API."""

from orchestrator.catalog import ModelCapabilities, ModelProvider
from orchestrator.client import (
    AdvancedAIOrchestrator,
    BatchOrchestratorService,
    ChatOrchestratorService,
    ModelResponse,
    OrchestratorError,
)
from orchestrator.strategies import RoutingStrategy, register_strategy

__all__ = [
    "AdvancedAIOrchestrator",
    "BatchOrchestratorService",
    "ChatOrchestratorService",
    "ModelCapabilities",
    "ModelProvider",
    "ModelResponse",
    "OrchestratorError",
    "RoutingStrategy",
    "register_strategy",
]
