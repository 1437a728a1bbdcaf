"""Conversation histories kept in Redis, so that a conversation_id carries its whole
context to whichever model answers next.

Key: {prefix}conv:{owner}:{id}, a list of messages as Message.to_json writes them, expiring
after RESULT_TTL of inactivity. The owner (the API key's user) is part of the key: the same
conversation id names different conversations for different users. New turns are appended when the answer is published
(RequestStore.complete), in the same atomic step, so a redelivered task cannot add a turn twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import redis

from orchestrator.core.types import Message
from orchestrator.store.connection import RoundTrip
from orchestrator.store.keyspace import Keys


@dataclass(frozen=True)
class ConversationTurn:
    key: str
    messages: tuple[dict, ...]


class Conversations:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.keyspace = Keys(prefix)

    def key(self, owner: str, conversation_id: str) -> str:
        return self.keyspace.conversation(owner, conversation_id)

    def history_in(self, trip: RoundTrip, owner: str, conversation_id: str) -> Callable[[], tuple[Message, ...]]:
        """The conversation's messages so far, read in the caller's round trip."""
        key = self.key(owner, conversation_id)
        return trip.command(lambda pipe: pipe.lrange(key, 0, -1),
                            lambda replies: tuple(Message.from_json(json.loads(item)) for item in replies[0]))

    def turn(self, owner: str, conversation_id: str, new: tuple[Message, ...], answer: Message) -> ConversationTurn:
        """What to append once `answer` is published: the request's new messages and the answer."""
        messages = [m.to_json() for m in (*new, answer)]
        return ConversationTurn(self.key(owner, conversation_id), tuple(messages))
