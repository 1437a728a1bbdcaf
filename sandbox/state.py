"""What one sandbox server holds between requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from orchestrator.core.catalog import Catalog, ModelCapabilities
from sandbox.attempts import AttemptLog
from sandbox.batch_jobs import BatchJobs
from sandbox.fault_rules import FaultRules
from sandbox.latency import Latency
from sandbox.prompt_cache import PromptCache


@dataclass
class SandboxState:
    catalog: Catalog
    latency: Latency
    rules: FaultRules = field(default_factory=FaultRules)
    attempts: AttemptLog = field(default_factory=AttemptLog)
    prompt_cache: PromptCache = field(default_factory=PromptCache)
    batches: BatchJobs = field(default_factory=BatchJobs)  # every provider's batches, by id
    files: dict = field(default_factory=dict)  # OpenAI's files, by id (sandbox/openai_batches.py)

    def spec(self, model: str) -> ModelCapabilities | None:
        """The model's catalog entry; None for a model the catalog does not know."""
        return self.catalog.models.get(model)

    def reset(self) -> None:
        self.rules.clear()
        self.attempts.clear()
        self.prompt_cache.clear()
        self.batches.clear()
        self.files.clear()


STATE_KEY = web.AppKey("sandbox_state", SandboxState)
