"""The attempt log: every request the sandbox received, faulted or not, in arrival order."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sandbox.conversation import Conversation
from sandbox.faults import Fault

LOG_SIZE = 10_000  # the oldest attempts are forgotten beyond this


@dataclass
class Attempt:
    time: float  # time.time() at arrival
    api: str  # openai, anthropic or gemini
    request_id: str
    model: str | None = None
    stream: bool = False
    fault: Fault | None = None
    status: int | None = None  # None: no response was sent (reset, no_response)
    conversation: Conversation | None = None  # None when the request could not be read
    ended: str | None = None  # for streams: "completed", or "client_closed" when the client hung up first
    client_request_id: str | None = None  # the caller's X-Request-ID header

    def as_dict(self) -> dict:
        conversation = self.conversation.as_log() if self.conversation else {"system": None, "messages": []}
        return {
            "time": self.time,
            "model": self.model,
            "api": self.api,
            "stream": self.stream,
            "fault": self.fault.kind if self.fault else None,
            "fault_params": dict(self.fault.params) if self.fault else {},
            "status": self.status,
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "ended": self.ended,
            **conversation,
        }


class AttemptLog:
    def __init__(self, size: int = LOG_SIZE):
        self._attempts: deque[Attempt] = deque(maxlen=size)

    def start(self, api: str, arrived: float, request_id: str, client_request_id: str | None = None) -> Attempt:
        attempt = Attempt(arrived, api, request_id, client_request_id=client_request_id)
        self._attempts.append(attempt)
        return attempt

    def all(self, model: str | None = None) -> list[Attempt]:
        return [a for a in self._attempts if model is None or a.model == model]

    def clear(self) -> int:
        cleared = len(self._attempts)
        self._attempts.clear()
        return cleared
