"""The Celery app Flower monitors: the workers' own settings, on kombu's stock Redis transport.

Flower reads the queues' lengths from the broker connection's URL, and knows `redis://`
but not the scheme of a transport of our own (workers/redis_transport.py). Flower only
reads events and broadcasts control commands, so the stock transport costs nothing here.
"""

from celery import Celery

app = Celery("orchestrator")
app.config_from_object("celeryconfig")
app.conf.broker_transport = None
