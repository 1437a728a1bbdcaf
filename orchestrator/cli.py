"""The `orchestrator` command: start each process of the stack, after checking the settings."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from urllib.parse import urlsplit

import click
import redis
from rich.console import Console
from rich.table import Table

from orchestrator.catalog import Catalog, CatalogError, check_default_model
from orchestrator.config import ConfigError, Settings, get_settings
from orchestrator.redis_conn import connect
from orchestrator.users import IssuedKey, NotFound, Users

out = Console()
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


class _UsersGroup(click.Group):
    """An unknown user or key, or Redis out of reach, is one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NotFound as exc:
            err.print(f"[bold red]error:[/] there is {exc}", highlight=False, soft_wrap=True)
        except redis.RedisError as exc:
            err.print(f"[bold red]cannot reach Redis:[/] {exc} Check that Redis runs at REDIS_URL.",
                      highlight=False, soft_wrap=True)
        sys.exit(1)


def _when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "never"


def _print_key(issued: IssuedKey) -> None:
    out.print(f"API key {issued.info.id}, shown this once only; keep it now:", highlight=False)
    out.print(issued.key, style="bold green", highlight=False, soft_wrap=True)


@main.group(cls=_UsersGroup)
@click.pass_context
def users(ctx: click.Context) -> None:
    """Manage users and their API keys (kept in Redis at REDIS_URL)."""
    settings = _checked_settings()
    ctx.obj = Users.for_settings(connect(settings), settings)


@users.command("create")
@click.option("--name", required=True, help="who the user is")
@click.option("--monthly-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="USD per month [MONTHLY_COST_LIMIT]")
@click.pass_obj
def create_user(store: Users, name: str, monthly_budget: float | None) -> None:
    """Create a user and print its first API key."""
    user, issued = store.create(name, monthly_budget)
    out.print(f"Created user [bold]{user.id}[/] ({user.name}), monthly budget ${user.monthly_budget:,.2f}",
              highlight=False, soft_wrap=True)
    _print_key(issued)


@users.command("list")
@click.pass_obj
def list_users(store: Users) -> None:
    """List the users, oldest first."""
    table = Table("user id", "name", "monthly budget", "created")
    for user in store.list_all():
        table.add_row(user.id, user.name, f"${user.monthly_budget:,.2f}", _when(user.created_at))
    out.print(table)


@users.command("keys")
@click.argument("user_id")
@click.pass_obj
def list_keys(store: Users, user_id: str) -> None:
    """List a user's API keys (never the keys themselves)."""
    table = Table("key id", "starts with", "created", "last used", "status")
    for key in store.keys(user_id):
        table.add_row(key.id, key.prefix, _when(key.created_at), _when(key.last_used_at),
                      "revoked" if key.revoked else "active")
    out.print(table)


@users.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke_key(store: Users, key_id: str) -> None:
    """Revoke an API key for good."""
    key = store.revoke(key_id)
    out.print(f"Revoked key {key.id} ({key.prefix}…) of user {key.user_id}", highlight=False)


@users.command("new-key")
@click.argument("user_id")
@click.pass_obj
def new_key(store: Users, user_id: str) -> None:
    """Issue another API key to a user and print it."""
    _print_key(store.issue_key(user_id))


if __name__ == "__main__":
    main()
