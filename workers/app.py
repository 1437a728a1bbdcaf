"""The Celery application. Workers start with `orchestrator worker` (see the Procfile).

Both kinds of process import it: the worker, and the API (to enqueue). Both run many threads
that hand a request to one another (the worker's consumer to its pool, gunicorn's acceptor
to its request threads) or wake on Redis, and a thread woken while another holds the GIL
waits up to Python's switch interval, 5 ms by default. At 0.5 ms the stack adds 1.4 ms less at p50 and 3.6 ms
less at p99 at 10 requests a second, for no more CPU (bench/RESULTS.md, "Gateway").
"""

from __future__ import annotations

import sys

from celery import Celery

sys.setswitchinterval(0.0005)

app = Celery("orchestrator", include=["workers.tasks", "workers.observability"])
app.config_from_object("celeryconfig")
