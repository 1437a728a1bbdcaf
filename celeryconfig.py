"""Every Celery setting in one place (see docs/architecture.md, "Queues and delivery")."""

from kombu import Exchange, Queue

from orchestrator.config import get_settings
from workers.queues import BATCH_QUEUE, CHAT_QUEUE, DEFAULT_PRIORITY, kombu_priority

_settings = get_settings()

broker_url = _settings.broker_url
# kombu's, building fewer Redis clients; its Sentinel variant when REDIS_SENTINELS is set
broker_transport = f"workers.redis_transport:{'SentinelTransport' if _settings.broker_through_sentinels else 'Transport'}"
broker_connection_retry_on_startup = True
broker_transport_options = {
    "priority_steps": list(range(10)),
    "sep": "\x06\x16",  # never occurs in a queue name; ':' would
    "queue_order_strategy": "priority",
    "visibility_timeout": _settings.visibility_timeout,
    # kombu 5.7 sweeps for unacked messages past the visibility timeout every interval ×
    # throttle seconds (100 s by default): sweep every few seconds instead, so a killed
    # worker's task comes back soon after the timeout (one ZRANGE per worker per sweep).
    "unacked_restore_interval": max(1, min(10, _settings.visibility_timeout // 2)),
    "unacked_restore_throttle": 1,
    # Every broker key (queues, bindings, unacked messages) under REDIS_PREFIX: deployments
    # (or test runs) that share a Redis never take each other's tasks.
    "global_keyprefix": _settings.redis_prefix,
    # With Sentinel: the master's name, asked of the sentinels at every (re)connection.
    "master_name": _settings.redis_sentinel_master,
}

# The request store (orchestrator/store/requests.py) is the results backend: tasks keep no
# Celery result, so nothing is written twice and results are keyed by request id.
task_ignore_result = True

task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in (CHAT_QUEUE, BATCH_QUEUE))
task_default_queue = CHAT_QUEUE
# Unprioritised work waits behind nothing more urgent than the API default.
task_default_priority = kombu_priority(DEFAULT_PRIORITY)
task_serializer = "json"
accept_content = ["json"]

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# Task events (which Flower lists tasks from) are off until a monitor asks for them: Flower
# turns them on every few seconds, and `orchestrator worker --task-events` (the Procfile's)
# sends them from the start. They are PUBLISHed by the worker's event loop, the one that
# also hands out tasks: about 2 ms more to the first token at 10 streams a second
# (bench/RESULTS.md, "Streaming").
# No `task-sent` event from the API: Flower lists a task from its worker's `task-received`,
# and the event would cost the API a PUBLISH (and about a millisecond of CPU) per request.
task_send_sent_event = False
worker_hijack_root_logger = False
