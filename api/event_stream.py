"""Following one request's event stream: the reading loop under every streaming answer.

The worker appends a request's events to its Redis stream (orchestrator/request_store.py):
`decision`, `chunk`s, then one terminal `final` or `error`. `follow` yields them as they
come, whatever wire format the caller is then given (the orchestrator's SSE events, or
OpenAI's chunks in api/openai_compat.py).
"""

from __future__ import annotations

import time
from typing import Iterator

from orchestrator.request_store import TERMINAL_EVENTS, RequestStore

Event = tuple[str, str, dict]  # (stream entry id, event type, data)


def follow(
    store: RequestStore, request_id: str, after: str, deadline: float, idle: float, grace: float
) -> Iterator[Event | None]:
    """The request's events after entry id `after`, up to and including its terminal one;
    None each time `idle` seconds pass without one (time for a keep-alive, which is also
    how a server notices that its caller left). It ends without a terminal event once
    `deadline` (time.time()) has passed.

    A reader that stops before the end (the generator is closed: its caller went away)
    cancels the request, `grace` seconds ahead so that a reconnect can still resume it."""
    finished = False
    try:
        while time.time() < deadline:
            events = store.read(request_id, after, min(idle, max(0.05, deadline - time.time())))
            if not events:
                yield None
                continue
            for after, event, data in events:
                if event in TERMINAL_EVENTS:
                    finished = True
                    yield after, event, data
                    return
                yield after, event, data
        finished = True
    finally:
        if not finished:
            store.cancel(request_id, grace)
