"""OpenAI's logprobs for an answer: one entry a token (a word with the space before it, the
sandbox's tokens), each with a log probability made from the token's hash and, when asked,
the `top` most likely tokens at that place (the token itself first)."""

from __future__ import annotations

import hashlib
import re

from sandbox.answers import VOCABULARY

_WORDS = tuple(dict.fromkeys(VOCABULARY))


def _logprob(token: str, place: int = 0) -> float:
    digest = hashlib.blake2b(f"{place}\x00{token}".encode(), digest_size=4).digest()
    return -round(int.from_bytes(digest, "big") / 2**32 * (2.0 + place), 6)


def _entry(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def token_logprobs(text: str, top: int) -> list[dict]:
    """The logprobs.content entries of `text`; they concatenate back to it."""
    entries = []
    for token in re.findall(r"\s*\S+", text):
        logprob = _logprob(token)
        lead = token[: len(token) - len(token.lstrip())]
        alternatives = [w for w in _WORDS if lead + w != token][: max(0, top - 1)]
        others = sorted((logprob - 0.5 + _logprob(word, place), lead + word)
                        for place, word in enumerate(alternatives, start=1))
        ranked = [_entry(token, logprob)] + [_entry(other, value) for value, other in reversed(others)]
        entries.append({**_entry(token, logprob), "top_logprobs": ranked[:top]})
    return entries
