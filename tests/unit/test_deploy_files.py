"""docker-compose.yml, read as Compose would (no Docker engine here): every service restarts
when it dies, Redis and the API say when they are healthy, the stack waits for Redis, and the
commands are the Procfile's."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_every_service_restarts_when_it_dies():
    assert {name: service.get("restart") for name, service in compose().items()} == {
        name: "unless-stopped" for name in ("redis", "api", "worker", "flower", "sandbox")}


def test_redis_and_the_api_have_healthchecks_and_the_stack_waits_for_redis():
    services = compose()
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert any("/health/ready" in part for part in services["api"]["healthcheck"]["test"])
    for name in ("api", "worker", "flower", "sandbox"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_commands_are_the_procfiles():
    procfile = {line.split(":", 1)[0]: line.split(":", 1)[1].split()[:2]
                for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()}
    services = compose()
    for name, service in (("web", "api"), ("worker", "worker"), ("flower", "flower"), ("sandbox", "sandbox")):
        assert services[service]["command"][:2] == procfile[name]
