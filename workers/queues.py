"""Queue names and the one place where API priorities become kombu priorities."""

CHAT_QUEUE = "chat"
BATCH_QUEUE = "batch"
DEFAULT_PRIORITY = 5
MOST_URGENT = 9


def kombu_priority(api_priority: int) -> int:
    """API priority 9 is the most urgent; kombu's Redis transport serves 0 first."""
    return 9 - api_priority
