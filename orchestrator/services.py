"""The long-lived objects a process builds once from its settings and shares."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis

from orchestrator.catalog import Catalog
from orchestrator.config import Settings
from orchestrator.conversations import Conversations
from orchestrator.fleet import Fleet
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.redis_conn import connect
from orchestrator.request_store import RequestStore
from orchestrator.router import Router


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    catalog: Catalog

    @classmethod
    def from_settings(cls, settings: Settings) -> "Services":
        return cls(settings=settings, redis=connect(settings), catalog=Catalog.load(settings.models_file))

    @cached_property
    def requests(self) -> RequestStore:
        return RequestStore(self.redis, self.settings.redis_prefix, self.settings.result_ttl)

    @cached_property
    def router(self) -> Router:
        return Router(self.catalog, default_model=self.settings.default_model_name)

    @cached_property
    def providers(self) -> ProviderRegistry:
        return ProviderRegistry(self.settings, self.catalog)

    @cached_property
    def fleet(self) -> Fleet:
        return Fleet(self.redis, self.settings.redis_prefix)

    @cached_property
    def conversations(self) -> Conversations:
        return Conversations(self.redis, self.settings.redis_prefix)
