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

from orchestrator.config import ConfigError, Settings, get_settings
from orchestrator.core.catalog import Catalog, CatalogError, check_default_model
from orchestrator.runtime.router_commands import router
from orchestrator.store.connection import connect
from orchestrator.store.users import IssuedKey, NotFound, Users

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
# An open stream or a waiting /chat/execute holds a thread until its answer ends: 2 x 500 holds
# 1,000 at once (bench/RESULTS.md, "Streaming": measured against 2 x 32 and gevent).
@click.option("--threads", default=500, show_default=True,
              help="threads per worker process: each open stream or waiting request holds one")
def web(bind: str, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn."""
    _checked_settings()
    _exec_python_module(
        "gunicorn", "--bind", bind, "--worker-class", "gthread", "--workers", str(workers),
        "--threads", str(threads), "--no-control-socket",
        # Above the API's own limits (api/errors.py), which answer in JSON; the line's is gunicorn's most.
        "--limit-request-line", "8190", "--limit-request-field_size", "65536", "--limit-request-fields", "256",
        "api.wsgi:app",
    )


@main.command()
@click.option("--concurrency", type=int, default=None, help="calls in flight per process [WORKER_CONCURRENCY]")
@click.option("--queues", default="chat,batch", show_default=True, help="queues to consume, most urgent first")
@click.option("--task-events", is_flag=True,
              help="send task events from the start (Flower turns them on within seconds anyway)")
def worker(concurrency: int | None, queues: str, task_events: bool) -> None:
    """Run a Celery worker that executes chat and batch requests."""
    settings = _checked_settings()
    _exec_python_module(
        "celery", "-A", "workers.app", "worker", "--pool", "threads", *(["--task-events"] if task_events else []),
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
    _exec_python_module("celery", "-A", "workers.flower_app", "flower", f"--port={port}", f"--address={address}")


@main.command()
@click.option("--port", type=int, default=None, help="port to listen on [port of SANDBOX_URL]")
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox(port: int | None, host: str) -> None:
    """Run the sandbox upstream that plays every provider without keys."""
    settings = _checked_settings()
    _exec_python_module("sandbox", "--host", host, "--port", str(port or urlsplit(settings.sandbox_url).port or 8100))


@main.command()
@click.option("--api-port", default=8000, show_default=True, envvar="API_PORT")
@click.option("--flower-port", default=5555, show_default=True, envvar="FLOWER_PORT")
def up(api_port: int, flower_port: int) -> None:
    """Run the whole stack in the foreground (what `make run` does)."""
    from orchestrator.runtime.launcher import LaunchError
    from orchestrator.runtime.launcher import up as run_stack

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


# --- batches, over HTTP (ORCHESTRATOR_URL, ORCHESTRATOR_API_KEY): any machine may submit ---

class _BatchGroup(click.Group):
    """A refusal of the API, or an API out of reach, is one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        import aiohttp

        from orchestrator_client import OrchestratorError

        try:
            return super().invoke(ctx)
        except OrchestratorError as exc:
            err.print(f"[bold red]error {exc.status}[/] ({exc.code}): {exc.message}", highlight=False,
                      soft_wrap=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            err.print(f"[bold red]cannot reach the orchestrator:[/] {exc or type(exc).__name__}. "
                      "Check ORCHESTRATOR_URL and that `orchestrator web` runs there.", highlight=False,
                      soft_wrap=True)
        sys.exit(1)


def _batch_service(ctx: click.Context):
    from orchestrator_client import BatchOrchestratorService

    if not os.environ.get("ORCHESTRATOR_API_KEY"):
        err.print("[bold red]error:[/] set ORCHESTRATOR_API_KEY to your API key "
                  "(`make run` writes the demo user's in .run/demo-api-key).", highlight=False, soft_wrap=True)
        sys.exit(1)
    return BatchOrchestratorService(timeout=600)


def _read_jsonl(path: str) -> list[dict]:
    """The requests of a JSONL file: one JSON object a line (blank lines skipped)."""
    import json

    requests = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise click.BadParameter(f"line {number} is not JSON: {exc}", param_hint="FILE") from None
            if not isinstance(item, dict):
                raise click.BadParameter(f"line {number} is not a JSON object", param_hint="FILE")
            requests.append(item)
    if not requests:
        raise click.BadParameter("the file holds no request", param_hint="FILE")
    return requests


def _print_batch(status: dict) -> None:
    counts, timing = status["counts"], status["timing"]
    done = counts["completed"] + counts["failed"] + counts["cancelled"]
    out.print(f"[bold]{status['batch_id']}[/] {status['status']} (priority {status['priority']})", highlight=False,
              soft_wrap=True)
    out.print(f"  {done} of {status['total']} ended: {counts['completed']} completed, {counts['failed']} failed, "
              f"{counts['cancelled']} cancelled; {counts['queued']} queued, {counts['running']} running",
              highlight=False, soft_wrap=True)
    out.print(f"  cost ${status['cost']:,.6f}, elapsed {timing['elapsed']:,.1f}s", highlight=False, soft_wrap=True)


def _wait_with_progress(service, batch_id: str, total: int, poll: float) -> dict:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
                  TimeElapsedColumn(), console=err) as progress:
        bar = progress.add_task(batch_id, total=total, state="queued")

        def show(status: dict) -> None:
            counts = status["counts"]
            done = counts["completed"] + counts["failed"] + counts["cancelled"]
            state = f"{status['status']}, {counts['failed']} failed, ${status['cost']:,.4f}"
            progress.update(bar, completed=done, state=state)

        return asyncio.run(service.wait_for_batch(batch_id, poll_interval=poll, on_progress=show))


@main.group(cls=_BatchGroup)
def batch() -> None:
    """Submit and follow batches through the API (ORCHESTRATOR_URL, ORCHESTRATOR_API_KEY)."""


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--priority", type=click.IntRange(0, 9), default=5, show_default=True,
              help="0 lowest to 9 most urgent")
@click.option("--wait", is_flag=True, help="follow the batch with a progress bar until it ends")
@click.option("--poll", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="seconds between polls")
@click.option("--user", default=None, help="your end user's id, recorded with every item")
@click.pass_context
def batch_submit(ctx: click.Context, file: str, priority: int, wait: bool, poll: float, user: str | None) -> None:
    """Submit the requests of a JSONL file (one {"task": ...} object a line) as one batch."""
    import asyncio

    service = _batch_service(ctx)
    requests = _read_jsonl(file)
    batch_id = asyncio.run(service.submit_batch(requests, user_id=user, priority=priority))
    out.print(f"Submitted batch [bold]{batch_id}[/]: {len(requests)} requests at priority {priority}",
              highlight=False, soft_wrap=True)
    if wait:
        status = _wait_with_progress(service, batch_id, len(requests), poll)
        _print_batch(status)
        if status["counts"]["failed"]:
            sys.exit(3)


@batch.command("status")
@click.argument("batch_id")
@click.option("--wait", is_flag=True, help="follow the batch with a progress bar until it ends")
@click.pass_context
def batch_status(ctx: click.Context, batch_id: str, wait: bool) -> None:
    """Show a batch's status, counts, cost and timing."""
    import asyncio

    service = _batch_service(ctx)
    status = asyncio.run(service.get_batch_status(batch_id, limit=0))
    if wait:
        status = _wait_with_progress(service, batch_id, status["total"], 1.0)
    _print_batch(status)


@batch.command("results")
@click.argument("batch_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write the JSONL there instead of standard output")
@click.pass_context
def batch_results(ctx: click.Context, batch_id: str, output: str | None) -> None:
    """Print (or save) every item's result as JSON Lines, in submission order."""
    import asyncio
    import json

    lines = [json.dumps(item) + "\n" for item in asyncio.run(_batch_service(ctx).get_batch_results(batch_id))]
    if output:
        with open(output, "w", encoding="utf-8") as file:
            file.writelines(lines)
        out.print(f"{len(lines)} results written to {output}", highlight=False)
    else:
        sys.stdout.writelines(lines)


@batch.command("cancel")
@click.argument("batch_id")
@click.pass_context
def batch_cancel(ctx: click.Context, batch_id: str) -> None:
    """Cancel a batch: items not started end cancelled; running ones finish."""
    import asyncio

    _print_batch(asyncio.run(_batch_service(ctx).cancel_batch(batch_id)))


main.add_command(router)

if __name__ == "__main__":
    main()
