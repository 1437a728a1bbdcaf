"""The WSGI entry point gunicorn serves (`orchestrator web`)."""

import gc

from api import create_app
from orchestrator.config import get_settings
from orchestrator.runtime import logs

logs.configure(get_settings().log_level, get_settings().log_format)
app = create_app()
# What exists now (modules, the app, its schemas) lives as long as the process: frozen, it
# is out of the collector's way, and a full collection no longer stops every thread for about
# 100 ms now and then, a stream's first token among them (bench/RESULTS.md, "Streaming").
# Collected first, so that no garbage is frozen with it.
gc.collect()
gc.freeze()
