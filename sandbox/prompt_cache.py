"""Prompt caching, simplified: a long system prompt a model has seen before is read from cache.

Providers cache prompt prefixes of at least 1024 tokens; here the prefix is the system
prompt, so a caller that repeats a long system prompt sees cached input tokens.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from sandbox.answers import count_tokens
from sandbox.conversation import Conversation

CACHEABLE_TOKENS = 1024
ENTRIES = 4096  # the least recently used prompts are forgotten beyond this


class PromptCache:
    def __init__(self, entries: int = ENTRIES):
        self._entries = entries
        self._seen: OrderedDict[tuple[str, bytes], None] = OrderedDict()

    def cached_tokens(self, model: str, conversation: Conversation) -> int:
        """The input tokens read from cache for this call; the prompt is cached for the next."""
        tokens = count_tokens(conversation.system or "")
        if tokens < CACHEABLE_TOKENS:
            return 0
        key = (model, hashlib.sha256(conversation.system.encode("utf-8", "replace")).digest())
        hit = key in self._seen
        self._seen[key] = None
        self._seen.move_to_end(key)
        if len(self._seen) > self._entries:
            self._seen.popitem(last=False)
        return tokens if hit else 0

    def clear(self) -> None:
        self._seen.clear()
