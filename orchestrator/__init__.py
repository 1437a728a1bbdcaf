"""AI Model Orchestrator: the domain core, and the brief's Python API."""

from orchestrator.core.catalog import ModelCapabilities, ModelProvider
from orchestrator.core.strategies import RoutingStrategy, register_strategy

_CLIENT_NAMES = ("AdvancedAIOrchestrator", "BatchOrchestratorService", "ChatOrchestratorService", "ModelResponse",
                 "OrchestratorError")

__all__ = ["ModelCapabilities", "ModelProvider", "RoutingStrategy", "register_strategy", *_CLIENT_NAMES]


def __getattr__(name: str):
    # The brief's client classes (orchestrator_client) bring aiohttp, about 20 MB: they are
    # imported on first use, so the API's and the workers' processes, which never use them,
    # do not load it.
    if name in _CLIENT_NAMES:
        import orchestrator_client as client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
