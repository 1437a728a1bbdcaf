"""Files uploaded through the OpenAI door's /v1/files (a batch's input, JSON Lines), each kept
RESULT_TTL seconds and seen by its owner only.

Keys (orchestrator/store/keyspace.py): file:{id} (owner, filename, purpose, bytes, created_at,
and the text itself), user-files:{user} (the owner's files by upload time).
"""

from __future__ import annotations

import secrets
import time

import redis

from orchestrator.store.keyspace import Keys

META = ("owner", "filename", "purpose", "bytes", "created_at")


class Files:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ttl = ttl

    def create(self, owner: str, filename: str, purpose: str, text: str) -> dict:
        file_id, now = f"file-{secrets.token_hex(12)}", int(time.time())
        record = {"owner": owner, "filename": filename, "purpose": purpose, "bytes": len(text.encode()),
                  "created_at": now}
        owned = self.keyspace.user_files(owner)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keyspace.file(file_id), mapping={**record, "data": text})
        pipe.expire(self.keyspace.file(file_id), self.ttl)
        pipe.zadd(owned, {file_id: now})
        pipe.zremrangebyscore(owned, 0, now - self.ttl)
        pipe.expire(owned, self.ttl)
        pipe.execute()
        return {"id": file_id, **record}

    def get(self, file_id: str) -> dict | None:
        """The file's description (no content); None when unknown or expired."""
        values = self.redis.hmget(self.keyspace.file(file_id), *META)
        if values[0] is None:
            return None
        record = dict(zip(META, values, strict=True))
        return {"id": file_id, **record, "bytes": int(record["bytes"]), "created_at": int(record["created_at"])}

    def content(self, file_id: str) -> str | None:
        return self.redis.hget(self.keyspace.file(file_id), "data")

    def of_owner(self, owner: str, limit: int) -> list[dict]:
        """The owner's newest files, newest first."""
        found = (self.get(file_id) for file_id in self.redis.zrevrange(self.keyspace.user_files(owner), 0, limit - 1))
        return [record for record in found if record is not None]

    def delete(self, file_id: str, owner: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keyspace.file(file_id))
        pipe.zrem(self.keyspace.user_files(owner), file_id)
        pipe.execute()
