"""`orchestrator up` (what `make run` runs): the whole stack in the foreground.

Makes sure Redis answers at REDIS_URL (starting a private redis-server under .run/ when
none does and one is installed), runs the Procfile with honcho, prints where to go once
the API is healthy, and on Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import redis
from rich.console import Console
from rich.panel import Panel

from orchestrator.config import Settings
from orchestrator.redis_conn import connect

console = Console()
RUN_DIR = Path(".run")


class LaunchError(Exception):
    """The stack cannot start; the message says what to do."""


def _redis_answers(settings: Settings) -> bool:
    try:
        return bool(connect(settings).ping())
    except redis.RedisError:
        return False


def ensure_redis(settings: Settings) -> subprocess.Popen | None:
    """None when Redis already answers, else the private redis-server started for this run."""
    if _redis_answers(settings):
        return None
    url = urlsplit(settings.redis_url)
    if url.hostname not in ("localhost", "127.0.0.1", "::1") or not shutil.which("redis-server"):
        raise LaunchError(
            f"Redis does not answer at {url.hostname}:{url.port or 6379}. Start one (`redis-server`, "
            "`apt install redis-server`, or `docker run -p 6379:6379 redis`) or set REDIS_URL to one that runs."
        )
    RUN_DIR.mkdir(exist_ok=True)
    args = ["redis-server", "--port", str(url.port or 6379), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(RUN_DIR.resolve()), "--logfile", str((RUN_DIR / "redis.log").resolve())]
    if settings.redis_password:
        args += ["--requirepass", settings.redis_password]
    server = subprocess.Popen(args, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _redis_answers(settings):
        if server.poll() is not None or time.monotonic() > deadline:
            raise LaunchError(f"redis-server did not start; see {RUN_DIR / 'redis.log'}")
        time.sleep(0.1)
    console.print(f"[green]started a private Redis on port {url.port or 6379} (data not kept)[/]")
    return server


def _announce_when_ready(api: str, flower: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urlopen(f"{api}/api/v1/orchestrator/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        console.print("[red]the API did not become healthy within 2 minutes; read the log lines above[/]")
        return
    curl = (
        f"curl -s {api}/api/v1/orchestrator/chat/execute -H 'Content-Type: application/json' "
        "-d '{\"message\": \"Explain machine learning\"}'"
    )
    console.print(
        Panel.fit(
            f"API      {api}/api/v1/orchestrator\nDocs     {api}/docs\nFlower   {flower}",
            title="orchestrator is ready (Ctrl-C stops everything)",
        )
    )
    console.print(f"Try:\n{curl}", soft_wrap=True, highlight=False)


def up(settings: Settings, api_port: int, flower_port: int) -> int:
    redis_server = ensure_redis(settings)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "API_PORT": str(api_port),
        "FLOWER_PORT": str(flower_port),
    }
    api, flower = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{flower_port}"
    threading.Thread(target=_announce_when_ready, args=(api, flower), daemon=True).start()
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start", "-f", "Procfile"], env=env)
    try:
        return honcho.wait()
    except KeyboardInterrupt:
        return honcho.wait()  # honcho got the same Ctrl-C and stops its processes
    finally:
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait()
