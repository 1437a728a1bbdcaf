"""`orchestrator up` (what `make run` runs): the whole stack in the foreground.

Makes sure Redis answers at REDIS_URL (starting a private redis-server under RUN_DIR when
none does and one is installed), makes sure a user "demo" exists and its key is in
RUN_DIR/demo-api-key, runs the Procfile's processes under a supervisor, prints where to go
and the demo key once the API is healthy. A process that dies is started again, after a
wait that doubles with each quick death (up to RESTART_MAX seconds); Ctrl-C, SIGINT or
SIGTERM stops every process it started, the private Redis last, and waits for them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import redis
from rich.console import Console
from rich.panel import Panel

from orchestrator.config import Settings
from orchestrator.store.connection import connect
from orchestrator.store.users import Users

console = Console()
DEMO_KEY_FILE = "demo-api-key"
RESTART_FIRST, RESTART_MAX = 1.0, 30.0  # seconds before a dead process starts again, doubling
STEADY = 60.0  # a process that ran this long before dying starts again after RESTART_FIRST
STOP_TIMEOUT = 10.0  # seconds the processes get to stop (a worker finishes its tasks) before SIGKILL


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
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    args = ["redis-server", "--port", str(url.port or 6379), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(run_dir.resolve()), "--logfile", str((run_dir / "redis.log").resolve())]
    if settings.redis_password:
        args += ["--requirepass", settings.redis_password]
    server = subprocess.Popen(args, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _redis_answers(settings):
        if server.poll() is not None or time.monotonic() > deadline:
            raise LaunchError(f"redis-server did not start; see {run_dir / 'redis.log'}")
        time.sleep(0.1)
    console.print(f"[green]started a private Redis on port {url.port or 6379} (data not kept)[/]")
    return server


def demo_key(users: Users, path: Path) -> str:
    """The key in `path` while it is still valid, else the first key of a new user "demo",
    written there readable by its owner only."""
    if path.exists():
        key = path.read_text().strip()
        if key and users.authenticate(key) is not None:
            return key
    _, issued = users.create("demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode of os.open applies only to a new file
    with os.fdopen(fd, "w") as file:
        file.write(issued.key + "\n")
    return issued.key


def _announce_when_ready(api: str, flower: str, key: str, key_path: Path) -> None:
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
        f"-H \"Authorization: Bearer $(cat {key_path})\" -d '{{\"message\": \"Explain machine learning\"}}'"
    )
    console.print(
        Panel.fit(
            f"API      {api}/api/v1/orchestrator\nDocs     {api}/docs\nDashboard {api}/dashboard\n"
            f"Flower   {flower}\n"
            f"API key  {key}  (user demo)\nKey file {key_path}",
            title="orchestrator is ready (Ctrl-C stops everything)",
        )
    )
    console.print(f"Try:\n{curl}", soft_wrap=True, highlight=False)


@dataclass
class Service:
    """One line of the Procfile and the process that runs it now."""

    name: str
    command: str
    process: subprocess.Popen | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


def procfile(path: Path) -> list[Service]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [Service(name.strip(), command.strip()) for name, _, command in
            (line.partition(":") for line in lines if line and not line.startswith("#"))]


@dataclass
class Supervisor:
    services: list[Service]
    env: dict[str, str]
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> int:
        for service in self.services:
            self._start(service)
        while not self.stopping.wait(0.2):
            for service in self.services:
                self._tend(service)
        return self._stop_all()

    def stop(self, signum=None, frame=None) -> None:
        self.stopping.set()

    def _start(self, service: Service) -> None:
        # The shell expands the Procfile's ${VAR:-default}; exec leaves the server as the child.
        # Each in a process group of its own, so that stopping it reaches its own children too
        # (gunicorn's and Celery's), even when it has to be killed before it could stop them.
        service.process = subprocess.Popen(["/bin/sh", "-c", f"exec {service.command}"], env=self.env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        service.started = time.monotonic()
        threading.Thread(target=self._relay, args=(service.name, service.process), daemon=True).start()

    @staticmethod
    def _relay(name: str, process: subprocess.Popen) -> None:
        """The process's output, each line after its name."""
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            sys.stdout.buffer.write(f"{name:8} | ".encode() + line)
            sys.stdout.flush()

    def _tend(self, service: Service) -> None:
        now = time.monotonic()
        if service.restart_at is not None:
            if now >= service.restart_at:
                service.restart_at = None
                self._start(service)
            return
        assert service.process is not None
        code = service.process.poll()
        if code is None:
            return
        _signal_group(service.process, signal.SIGKILL)  # what it left behind
        service.quick_deaths = 0 if now - service.started > STEADY else service.quick_deaths + 1
        wait = min(RESTART_MAX, RESTART_FIRST * 2 ** max(0, service.quick_deaths - 1))
        console.print(f"[yellow]{service.name} exited ({code}); starting it again in {wait:g}s[/]")
        service.restart_at = now + wait

    def _stop_all(self) -> int:
        running = [s.process for s in self.services if s.process is not None and s.process.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for service in self.services:  # what a stopped process left behind
            if service.process is not None:
                _signal_group(service.process, signal.SIGKILL)
        return 0


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # the group is gone already


def up(settings: Settings, api_port: int, flower_port: int) -> int:
    redis_server = ensure_redis(settings)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "API_PORT": str(api_port),
        "FLOWER_PORT": str(flower_port),
    }
    api, flower = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{flower_port}"
    supervisor = Supervisor(procfile(Path("Procfile")), env)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.stop)
    try:
        key_path = Path(settings.run_dir) / DEMO_KEY_FILE
        key = demo_key(Users.for_settings(connect(settings), settings), key_path)
        threading.Thread(target=_announce_when_ready, args=(api, flower, key, key_path), daemon=True).start()
        return supervisor.run()
    finally:
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait()
