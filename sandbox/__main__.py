"""`python -m sandbox --host H --port P`: the sandbox upstream, with the operator's catalog
(MODELS_FILE) and latency scale (SANDBOX_LATENCY_SCALE). `orchestrator sandbox` runs this."""

from __future__ import annotations

import click

from orchestrator.config import get_settings
from orchestrator.core.catalog import Catalog
from sandbox.server import run


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
def main(host: str, port: int) -> None:
    settings = get_settings()
    run(host, port, Catalog.load(settings.models_file), settings.sandbox_latency_scale)


if __name__ == "__main__":
    main()
