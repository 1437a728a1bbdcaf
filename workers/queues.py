"""Queue names and the one place where API priorities become kombu priorities."""

CHAT_QUEUE = "chat"
BATCH_QUEUE = "batch"
DEFAULT_PRIORITY = 5
MOST_URGENT = 9


def task_reprs(request_id: str) -> dict[str, str]:
    """What a task's message shows of its arguments (Flower, task events, logs): the request
    id, never the payload. It keeps the users' prompts out of the monitoring, and spares
    Celery a `saferepr` of the whole conversation on every send."""
    return {"argsrepr": repr([request_id]), "kwargsrepr": "{}"}


def kombu_priority(api_priority: int) -> int:
    """API priority 9 is the most urgent; kombu's Redis transport serves 0 first."""
    return 9 - api_priority


def batch_kombu_priority(api_priority: int) -> int:
    """A batch item's kombu priority: after interactive chat, whatever the batch's priority.

    The Redis transport serves a worker's queues priority level by level (every queue's
    level 0, then every queue's level 1, ...), and within a level in the worker's -Q order.
    A batch at API priority 9 on kombu level 0 would therefore come before chat at its
    default level, and a large urgent batch would starve interactive requests. So batches
    use the levels from chat's default (where `chat`, first in -Q, still goes first) to the
    last: API priority 9..0 onto kombu 4..9, neighbours sharing a level (9 | 8 7 | 6 5 | 4 3
    | 2 1 | 0). Priorities stay real between batches; chat always goes first."""
    chat = kombu_priority(DEFAULT_PRIORITY)
    return chat + round((MOST_URGENT - api_priority) * (MOST_URGENT - chat) / MOST_URGENT)
