"""The WSGI entry point gunicorn serves (`orchestrator web`)."""

from api import create_app

app = create_app()
