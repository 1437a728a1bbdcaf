"""Every Redis key the orchestrator writes, named once, under one prefix (REDIS_PREFIX,
`orch:` by default). kombu's own keys (queues, `unacked`) are named by kombu under the same
prefix and read in workers/broker.py.

Requests and batches
  req:{request_id}                 hash: status, owner, kind, created_at, started_at,
                                   finished_at, result (JSON), chain (JSON); a batch item's
                                   also batch, index, payload (its job), metadata, cost_micro
  events:{request_id}              stream: decision, chunk..., then final or error
  cancel:{request_id}              string: when the worker should stop (the caller left)
  batch:{batch_id}                 hash: owner, priority, total, times, counters, cost_micro
  batch:{batch_id}:lost-seen       set: item indexes the last look found lost
  batches-open                     sorted set: batch id -> creation time (unfinished)
  user-requests:{user}             sorted set: the user's newest chat request ids -> creation time
  user-batches:{user}              sorted set: the user's batch ids -> creation time
  lost-sweep                       string: the last look for lost batch items, one at a time
  conv:{owner}:{conversation_id}   list: the conversation's messages (JSON)
  streams-open                     sorted set: reader id -> last read (streaming answers)
  file:{file_id}                   hash: an uploaded file (owner, filename, purpose, bytes, created_at, data)
  user-files:{user}                sorted set: the user's file ids -> upload time
Economy batches (orchestrator/store/provider_batches.py)
  economy-pending:{model}          sorted set: economy items routed to the model, not yet submitted -> when
  submission:{id}                  hash: a submission on its way to a provider: provider, model, owner (its pass), at
  submission:{id}:items            list: its items' request ids, in submission order
  submissions-open                 sorted set: submissions not settled yet -> when recorded
  upstream:{id}                    hash: a provider batch: provider, model, total, status, submitted_at, ...
  upstream:{id}:items              list: its items' request ids, in submission order
  upstreams-open                   sorted set: provider batches not collected yet -> submission time
  batch:{batch_id}:upstreams       set: the provider batches of a batch's items
  economy-lock                     string: the fleet's economy pass, one worker at a time
Money and usage
  budget:{user}:{YYYY-MM}          hash: spent_micro
  budget:{user}:{YYYY-MM}:held     hash: request id -> reserved micro-dollars
  budget:{user}:{YYYY-MM}:until    sorted set: request id -> when the reservation expires
  usage:{user}:{YYYY-MM}           hash: "{complexity}|{model}|{field}" counters
  spend:{YYYY-MM-DD}               hash: "{user}|{model}|{field}" counters
  uspend:{user}                    hash: micro-dollars spent per hour
Models
  stats:{model}                    hash: moving averages (success, ttft, latency, samples)
  stats:{model}:h{hour}            hash: the hour's counters and histograms
  stats:{model}:total              hash: lifetime counters (Prometheus)
  circuit:{scope}:{name}           hash: a circuit of a model or a provider
  circuit-probe:{model}            string: the one probe let through an open circuit
  plimit:{model}:{lane}:at|tok|meta  a provider rate limit's slot schedule
  neighbourhood:{cluster}          hash: per-model quality corrections in a prompt cluster
Users and learning
  user:{user_id}, users, apikey:{key_id}, user_keys:{user_id}, apikeys (hash of key hashes)
  ratelimit:{key_id}               sorted set: the key's requests in the window
  learned:{user_id}                hash: decayed scores per level and model
  quality                          hash: rated quality per model and task type
  feedback:{request_id}            hash: the one rating of a request
Fleet and alerts
  workers                          sorted set: hostname -> last heartbeat
  monitor-lock                     string: the fleet's periodic pass, one worker at a time
  alerts, alerts:user:{user_id}    lists: alerts, newest first
  alert-once:{episode}             string: the episode has fired
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    # Requests and batches

    def record(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def events(self, request_id: str) -> str:
        return f"{self.prefix}events:{request_id}"

    def cancel(self, request_id: str) -> str:
        return f"{self.prefix}cancel:{request_id}"

    def batch(self, batch_id: str) -> str:
        return f"{self.prefix}batch:{batch_id}"

    def batch_lost_seen(self, batch_id: str) -> str:
        return f"{self.prefix}batch:{batch_id}:lost-seen"

    @property
    def batches_open(self) -> str:
        return f"{self.prefix}batches-open"

    def user_requests(self, user_id: str) -> str:
        return f"{self.prefix}user-requests:{user_id}"

    def user_batches(self, user_id: str) -> str:
        return f"{self.prefix}user-batches:{user_id}"

    def file(self, file_id: str) -> str:
        return f"{self.prefix}file:{file_id}"

    def user_files(self, user_id: str) -> str:
        return f"{self.prefix}user-files:{user_id}"

    def economy_pending(self, model: str) -> str:
        return f"{self.prefix}economy-pending:{model}"

    def submission(self, submission_id: str) -> str:
        return f"{self.prefix}submission:{submission_id}"

    def submission_items(self, submission_id: str) -> str:
        return f"{self.prefix}submission:{submission_id}:items"

    @property
    def submissions_open(self) -> str:
        return f"{self.prefix}submissions-open"

    def upstream(self, upstream_id: str) -> str:
        return f"{self.prefix}upstream:{upstream_id}"

    def upstream_items(self, upstream_id: str) -> str:
        return f"{self.prefix}upstream:{upstream_id}:items"

    @property
    def upstreams_open(self) -> str:
        return f"{self.prefix}upstreams-open"

    def batch_upstreams(self, batch_id: str) -> str:
        return f"{self.prefix}batch:{batch_id}:upstreams"

    @property
    def economy_lock(self) -> str:
        return f"{self.prefix}economy-lock"

    @property
    def lost_sweep(self) -> str:
        return f"{self.prefix}lost-sweep"

    def conversation(self, owner: str, conversation_id: str) -> str:
        return f"{self.prefix}conv:{owner}:{conversation_id}"

    @property
    def streams_open(self) -> str:
        return f"{self.prefix}streams-open"

    # Money and usage

    def budget(self, user_id: str, month: str) -> tuple[str, str, str]:
        """Spent, held and until of a user's month."""
        base = f"{self.prefix}budget:{user_id}:{month}"
        return base, f"{base}:held", f"{base}:until"

    def usage(self, user_id: str, month: str) -> str:
        return f"{self.prefix}usage:{user_id}:{month}"

    def ratings(self, user_id: str) -> str:
        """A user's latest ratings, newest first: JSON entries (orchestrator/store/learning.py)."""
        return f"{self.prefix}ratings:{user_id}"

    def daily_spend(self, day: str) -> str:
        return f"{self.prefix}spend:{day}"

    def hourly_spend(self, user_id: str) -> str:
        return f"{self.prefix}uspend:{user_id}"

    # Models

    def averages(self, model: str) -> str:
        return f"{self.prefix}stats:{model}"

    def hour(self, model: str, hour: int) -> str:
        return f"{self.prefix}stats:{model}:h{hour}"

    def totals(self, model: str) -> str:
        return f"{self.prefix}stats:{model}:total"

    def circuit(self, scope: str, name: str) -> str:
        return f"{self.prefix}circuit:{scope}:{name}"

    def circuit_probe(self, model: str) -> str:
        return f"{self.prefix}circuit-probe:{model}"

    def provider_limit(self, model: str, lane: str) -> list[str]:
        """The slot times, the tokens booked before each slot, and the lane's meta."""
        base = f"{self.prefix}plimit:{model}:{lane}"
        return [f"{base}:at", f"{base}:tok", f"{base}:meta"]

    def neighbourhood(self, cluster: int) -> str:
        return f"{self.prefix}neighbourhood:{cluster}"

    # Users and learning

    def user(self, user_id: str) -> str:
        return f"{self.prefix}user:{user_id}"

    @property
    def users(self) -> str:
        return f"{self.prefix}users"

    def api_key(self, key_id: str) -> str:
        return f"{self.prefix}apikey:{key_id}"

    def user_keys(self, user_id: str) -> str:
        return f"{self.prefix}user_keys:{user_id}"

    @property
    def key_lookup(self) -> str:
        return f"{self.prefix}apikeys"

    def rate_limit(self, key_id: str) -> str:
        return f"{self.prefix}ratelimit:{key_id}"

    def learned(self, user_id: str) -> str:
        return f"{self.prefix}learned:{user_id}"

    @property
    def rated_quality(self) -> str:
        return f"{self.prefix}quality"

    def feedback(self, request_id: str) -> str:
        return f"{self.prefix}feedback:{request_id}"

    # Fleet and alerts

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def monitor_lock(self) -> str:
        return f"{self.prefix}monitor-lock"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    def user_alerts(self, user_id: str) -> str:
        return f"{self.prefix}alerts:user:{user_id}"

    def alert_once(self, episode: str) -> str:
        return f"{self.prefix}alert-once:{episode}"
