"""Deterministic, believable answers and token counts for the sandbox."""

from __future__ import annotations

import hashlib

VOCABULARY = (
    "the model considers your question and answers it step by step with care "
    "first we look at the main idea then we weigh the evidence and the trade-offs "
    "in short a clear result follows from simple parts working together well "
    "this approach is reliable because each step can be checked on its own "
    "for example a small change in the input gives a small change in the output "
    "so the answer stays stable useful and easy to follow for most readers"
).split()
_MIN_WORDS, _MAX_WORDS = 20, 300


def count_tokens(text: str) -> int:
    """About four characters a token, OpenAI's rule of thumb for English."""
    return max(1, (len(text) + 3) // 4) if text else 0


def answer(prompt: str, max_tokens: int) -> tuple[str, int, str]:
    """The sandbox's answer to `prompt`: (text, output tokens, finish reason).

    The same prompt always gets the same answer; its length (20 to 300 tokens, one token
    a word) depends on the prompt, and is cut at max_tokens with finish reason "length".
    """
    # One hash gives the length and a byte per word: cheap enough for thousands of requests a second.
    digest = hashlib.shake_256(prompt.encode("utf-8", "replace")).digest(8 + _MAX_WORDS)
    wanted = _MIN_WORDS + int.from_bytes(digest[:8], "big") % (_MAX_WORDS - _MIN_WORDS + 1)
    tokens = min(wanted, max(1, max_tokens))
    words = [VOCABULARY[byte % len(VOCABULARY)] for byte in digest[8 : 8 + tokens]]
    words[0] = words[0].capitalize()
    return " ".join(words) + ".", tokens, "length" if tokens < wanted else "stop"
