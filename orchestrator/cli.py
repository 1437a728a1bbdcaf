"""The `orchestrator` command: start each process of the stack, after checking the settings."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click
from rich.console import Console

from orchestrator.catalog import Catalog, CatalogError, check_default_model
from orchestrator.config import ConfigError, Settings, get_settings

err = Console(stderr=True)


def _checked_settings() -> Settings:
    """Settings and catalog, or one line saying what to fix and exit status 2."""
    try:
        settings = get_settings()
        check_default_model(settings, Catalog.load(settings.models_file))
    except (ConfigError, CatalogError) as exc:
        err.print(f"[bold red]configuration error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    return settings


def _exec_python_module(module: str, *args: str) -> None:
    """Replace this process, so that the process manager signals the server itself."""
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


@click.group()
def main() -> None:
    """AI Model Orchestrator: route each chat request to the best model."""


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port to listen on")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--threads", default=32, show_default=True, help="threads per worker process")
def web(bind: str, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn."""
    _checked_settings()
    _exec_python_module(
        "gunicorn", "--bind", bind, "--worker-class", "gthread", "--workers", str(workers),
        "--threads", str(threads), "--no-control-socket", "api.wsgi:app",
    )


@main.command()
@click.option("--concurrency", type=int, default=None, help="calls in flight per process [WORKER_CONCURRENCY]")
@click.option("--queues", default="chat,batch", show_default=True, help="queues to consume, most urgent first")
def worker(concurrency: int | None, queues: str) -> None:
    """Run a Celery worker that executes chat and batch requests."""
    settings = _checked_settings()
    _exec_python_module(
        "celery", "-A", "workers.app", "worker", "--pool", "threads",
        "--concurrency", str(concurrency or settings.worker_concurrency),
        "--queues", queues, "--loglevel", settings.log_level, "--hostname", f"worker-{os.getpid()}@%h",
        # Workers coordinate through Redis, not through gossip; skipping both saves start-up time and CPU.
        "--without-gossip", "--without-mingle",
    )


@main.command()
@click.option("--port", default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def flower(port: int, address: str) -> None:
    """Run Flower, the Celery monitoring UI."""
    _checked_settings()
    _exec_python_module("celery", "-A", "workers.app", "flower", f"--port={port}", f"--address={address}")


@main.command()
@click.option("--port", type=int, default=None, help="port to listen on [port of SANDBOX_URL]")
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox(port: int | None, host: str) -> None:
    """Run the sandbox upstream that plays every provider without keys."""
    settings = _checked_settings()
    from orchestrator.sandbox.server import run

    run(host, port or urlsplit(settings.sandbox_url).port or 8100, Catalog.load(settings.models_file),
        settings.sandbox_latency_scale)


@main.command()
@click.option("--api-port", default=8000, show_default=True, envvar="API_PORT")
@click.option("--flower-port", default=5555, show_default=True, envvar="FLOWER_PORT")
def up(api_port: int, flower_port: int) -> None:
    """Run the whole stack in the foreground (what `make run` does)."""
    from orchestrator.launcher import LaunchError
    from orchestrator.launcher import up as run_stack

    settings = _checked_settings()
    try:
        sys.exit(run_stack(settings, api_port, flower_port))
    except LaunchError as exc:
        err.print(f"[bold red]cannot start:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


@main.command("check-config")
def check_config() -> None:
    """Check the settings and the model catalog, and say where each provider is served."""
    settings = _checked_settings()
    click.echo(f"settings ok: {settings!r}")


if __name__ == "__main__":
    main()
