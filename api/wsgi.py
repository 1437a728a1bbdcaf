"""The WSGI entry point gunicorn serves (`orchestrator web`)."""

from api import create_app
from orchestrator import logs
from orchestrator.config import get_settings

logs.configure(get_settings().log_level, get_settings().log_format)
app = create_app()
