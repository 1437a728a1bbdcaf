"""The Celery application. Workers start with `orchestrator worker` (see the Procfile)."""

from __future__ import annotations

from celery import Celery

app = Celery("orchestrator", include=["workers.tasks", "workers.observability"])
app.config_from_object("celeryconfig")
