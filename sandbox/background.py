"""The sandbox served from a thread of the current process, on a free port (for tests).

    with BackgroundSandbox(Catalog.load(), latency_scale=0) as sandbox:
        openai.OpenAI(base_url=sandbox.url + "/v1", api_key="x", max_retries=0)
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from orchestrator.core.catalog import Catalog
from sandbox.server import create_app

START_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 1.0  # requests still open at shutdown (a no_response, say) are dropped after it


class BackgroundSandbox:
    def __init__(self, catalog: Catalog, latency_scale: float = 0.0, host: str = "127.0.0.1", **app_options):
        self._app = create_app(catalog, latency_scale, **app_options)
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> BackgroundSandbox:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(START_TIMEOUT)
        self.url = f"http://{self._host}:{port}"
        return self

    async def _serve(self) -> int:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        return self._runner.addresses[0][1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(START_TIMEOUT + SHUTDOWN_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> BackgroundSandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
