"""The Celery tasks hand a task that meets Redis away back to the queue instead of acking it
as failed (which would lose it: a batch item would stay running for ever)."""

from types import SimpleNamespace

import pytest
import redis
from celery.exceptions import Reject

from orchestrator.core.embedding import EmbeddingJob
from orchestrator.core.job import ChatJob
from orchestrator.core.types import Message
from workers import tasks


class Away:
    def run(self, *args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def redis_away(monkeypatch):
    monkeypatch.setattr(tasks, "services", lambda: SimpleNamespace(executor=Away(), embedder=Away()))


def test_a_chat_task_meeting_redis_away_is_requeued(redis_away):
    with pytest.raises(Reject) as raised:
        tasks.execute_chat("req_away", ChatJob(messages=(Message("user", "hi"),)).to_json())
    assert raised.value.requeue is True


def test_an_embedding_task_meeting_redis_away_is_requeued(redis_away):
    job = EmbeddingJob(owner="u", model="text-embedding-3-small", inputs=("hi",), dimensions=None, deadline=1e10)
    with pytest.raises(Reject) as raised:
        tasks.execute_embedding("req_away", job.to_json())
    assert raised.value.requeue is True
