"""What the predictor reads from a conversation: two windows of words and a few numbers.

The same functions serve training (over the shared data files) and routing (over a live
request), so the two never drift apart. Words are lower-cased ASCII runs of letters and
digits, other scripts' characters kept as they are; each window is bounded, so a 1 MB prompt
costs about what a 2 KB one does.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from orchestrator.core.analysis import TaskAnalysis, TaskType

# Lower-cases ASCII and turns ASCII punctuation into spaces; UTF-8 bytes of other scripts stay.
_FOLD = bytes(32 if b < 128 and not chr(b).isalnum() else (b + 32 if 65 <= b <= 90 else b) for b in range(256))
_DIGITS = bytes(range(48, 58))
_NOT_DIGIT = bytes(b for b in range(256) if b not in _DIGITS)

# Instructions sit at the start or the end of a prompt; the question of a few-shot prompt at its end.
HEAD_CHARS, TAIL_CHARS = 1024, 256
LAST_CHARS = 400  # the "tail" window: the end of the last user message alone
CONTEXT_CHARS_PER_MESSAGE, CONTEXT_CHARS = 512, 1536

TASK_TYPES = tuple(TaskType)
SCALAR_NAMES = (
    "log_chars_last", "log_chars_all", "complexity_score", "digit_share", "questions", "options",
    "earlier_user_turns", *(f"type_{t.value}" for t in TASK_TYPES),
)

LENGTH_SCALAR = SCALAR_NAMES.index("log_chars_all")


class Reading(NamedTuple):
    """A conversation as the predictor sees it."""

    words: list[bytes]  # the whole window: last message (head and tail) and earlier turns
    last_words: list[bytes]  # the last LAST_CHARS characters of the last user message
    scalars: list[float]  # in SCALAR_NAMES order


def words(text: str) -> list[bytes]:
    return text.encode("utf-8", "ignore").translate(_FOLD).split()


def _window(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def _context(earlier: list[str]) -> str:
    pieces, total = [], 0
    for text in reversed(earlier):
        piece = text[:CONTEXT_CHARS_PER_MESSAGE]
        pieces.append(piece)
        total += len(piece)
        if total >= CONTEXT_CHARS:
            break
    return "\n".join(pieces)


def _has_options(text: str) -> bool:
    """A multiple-choice question: options A and B on lines of their own."""
    return ("\nA." in text or "\nA)" in text) and ("\nB." in text or "\nB)" in text)


def read(last: str, earlier: list[str], analysis: TaskAnalysis) -> Reading:
    """`last` is the last user message, `earlier` the user turns before it, oldest first."""
    window = _window(last)
    context = _context(earlier)
    sample = window.encode("utf-8", "ignore")
    digits = len(sample.translate(None, _NOT_DIGIT))
    task_type = analysis.task_type
    scalars = [
        math.log1p(len(last)),
        math.log1p(len(last) + sum(map(len, earlier))),
        analysis.complexity_score,
        10.0 * digits / max(1, len(sample)),
        min(5, window.count("?")) / 5,
        float(_has_options(window)),
        min(3, len(earlier)) / 3,
        *(float(task_type == t) for t in TASK_TYPES),
    ]
    return Reading(words(f"{window}\n{context}" if context else window), words(last[-LAST_CHARS:]), scalars)
