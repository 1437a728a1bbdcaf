"""The sandbox's simplified prompt caching."""

from sandbox.conversation import Conversation
from sandbox.prompt_cache import CACHEABLE_TOKENS, PromptCache


def test_a_long_system_prompt_is_cached_for_the_same_model_on_its_second_use():
    cache = PromptCache()
    long = Conversation.of(["x" * 4 * CACHEABLE_TOKENS], [("user", "q")])
    short = Conversation.of(["brief"], [("user", "q")])
    assert cache.cached_tokens("m", long) == 0
    assert cache.cached_tokens("m", long) == CACHEABLE_TOKENS
    assert cache.cached_tokens("other", long) == 0
    assert cache.cached_tokens("m", short) == cache.cached_tokens("m", short) == 0


def test_the_least_recently_used_prompts_are_forgotten():
    cache = PromptCache(entries=1)
    first, second = (Conversation.of([c * 4 * CACHEABLE_TOKENS], [("user", "q")]) for c in "ab")
    cache.cached_tokens("m", first)
    cache.cached_tokens("m", second)
    assert cache.cached_tokens("m", first) == 0
