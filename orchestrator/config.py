"""Settings from the environment (and a `.env` file when present).

Every variable the README documents is read here and nowhere else. A bad value stops
start-up with one line that names the variable and the form it expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from environs import Env, EnvError
from marshmallow.validate import OneOf, Range


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


@dataclass(frozen=True)
class Settings:
    # Provider keys. A provider without one is played by the sandbox when the sandbox is on
    # (SANDBOX=on, or SANDBOX=auto, the default, with no provider key set at all: the demo);
    # otherwise its models are unavailable.
    openai_api_key: str | None = field(default=None, repr=False)
    anthropic_api_key: str | None = field(default=None, repr=False)
    google_api_key: str | None = field(default=None, repr=False)
    # The key of the admin, who manages users over the API; unset means no admin over HTTP.
    admin_api_key: str | None = field(default=None, repr=False)

    cost_tracking_enabled: bool = True
    monthly_cost_limit: float = 1000.0
    rate_limit_requests: int = 100
    rate_limit_window: int = 60

    redis_url: str = "redis://localhost:6379/0"
    redis_password: str | None = field(default=None, repr=False)
    redis_prefix: str = "orch:"
    # Redis Sentinel: when sentinels are named, every process asks them for the master of
    # REDIS_SENTINEL_MASTER (and again after a failover); REDIS_URL then only gives the
    # database number and the password.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "mymaster"
    # Writes that must survive a failover (a request's end and its billing, a batch's
    # acceptance) wait for this many replicas to have them (WAIT), at most the timeout.
    redis_wait_replicas: int = 0
    redis_wait_timeout: float = 0.5
    # Celery's broker (the queues) on a Redis of its own, the first step when one Redis is the
    # limit (bench/RESULTS.md, the capacity model); None: the queues live in REDIS_URL's Redis.
    broker_redis_url: str | None = field(default=None, repr=False)

    default_model_provider: str = "openai"
    default_model_name: str = "gpt-4"
    default_temperature: float = 0.7
    default_max_tokens: int = 2048

    sandbox_url: str = "http://127.0.0.1:8100"
    sandbox_latency_scale: float = 1.0
    sandbox: str = "auto"  # auto, on or off

    @property
    def sandbox_on(self) -> bool:
        """Whether providers without a key are played by the sandbox."""
        if self.sandbox != "auto":
            return self.sandbox == "on"
        return not (self.openai_api_key or self.anthropic_api_key or self.google_api_key)
    models_file: str | None = None

    request_timeout: float = 60.0
    first_token_timeout: float = 10.0
    max_models_per_request: int = 3
    retry_after_limit: float = 5.0
    circuit_min_calls: int = 5
    circuit_failure_rate: float = 0.5
    circuit_open_seconds: float = 30.0
    max_body_bytes: int = 1024 * 1024
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; "*" for any
    result_ttl: int = 86400
    visibility_timeout: int = 300
    worker_concurrency: int = 32
    batch_max_items: int = 10_000
    batch_max_body_bytes: int = 64 * 1024 * 1024
    provider_limit_window: float = 60.0
    batch_limit_share: float = 0.8
    log_level: str = "INFO"
    run_dir: str = ".run"
    # Alerts (orchestrator/store/alerts.py): POSTed as JSON here when set.
    alert_webhook_url: str | None = None
    # Performance degradation (orchestrator/runtime/monitor.py): a model's recent p95 latency over
    # this many times its own baseline, or over the absolute ceiling when one is set.
    degradation_factor: float = 2.0
    degradation_p95_seconds: float | None = None
    # Cost anomaly (orchestrator/store/usage.py): a user's spend this hour over this many times
    # their average hourly spend, and at least the minimum.
    cost_anomaly_factor: float = 5.0
    cost_anomaly_min_spend: float = 1.0
    log_format: str = "json"

    @property
    def redis_url_with_password(self) -> str:
        """REDIS_URL with REDIS_PASSWORD folded in, as Celery's broker URL needs it."""
        if not self.redis_password:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        if parts.password:
            return self.redis_url
        host = parts.hostname or "localhost"
        netloc = f":{self.redis_password}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def broker_through_sentinels(self) -> bool:
        return bool(self.redis_sentinels) and not self.broker_redis_url

    @property
    def broker_url(self) -> str:
        """Celery's broker URL: BROKER_URL when set; else REDIS_URL's, or kombu's list of
        sentinels (each carrying the database and the master's password) when REDIS_SENTINELS is set."""
        if self.broker_redis_url:
            return self.broker_redis_url
        if not self.redis_sentinels:
            return self.redis_url_with_password
        parts = urlsplit(self.redis_url_with_password)
        auth = f":{parts.password}@" if parts.password else ""
        return ";".join(f"sentinel://{auth}{host}:{port}{parts.path or '/0'}" for host, port in self.redis_sentinels)


_FORMS = {
    "float": "a number, e.g. 1000.0",
    "int": "a whole number, e.g. 100",
    "bool": "true or false",
    "url": "a URL such as redis://localhost:6379/0",
}


def _read(env: Env, kind: str, name: str, default, **kwargs):
    try:
        return getattr(env, "str" if kind == "url" else kind)(name, default, **kwargs)
    except EnvError as exc:
        raw = env.str(name, "")
        form = _FORMS.get(kind, "a valid value")
        messages = getattr(exc, "error_messages", None)
        reason = " ".join(messages) if isinstance(messages, list) else str(exc).split("invalid:", 1)[-1].strip()
        raise ConfigError(f"{name}={raw!r} is invalid ({reason}); expected {form}") from None


def _sentinels(env: Env) -> tuple[tuple[str, int], ...]:
    raw = env.str("REDIS_SENTINELS", "").strip()
    sentinels = []
    for address in filter(None, (part.strip() for part in raw.split(","))):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"REDIS_SENTINELS={raw!r} is invalid; expected host:port pairs separated by commas, "
                              "e.g. sentinel-0:26379,sentinel-1:26379")
        sentinels.append((host, int(port)))
    return tuple(sentinels)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    if urlsplit(value).scheme not in schemes or not urlsplit(value).hostname:
        raise ConfigError(f"{name}={value!r} is invalid; expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


def load_settings(read_dotenv: bool = True) -> Settings:
    """Read the settings once from the process environment (and `.env` when present)."""
    env = Env()
    if read_dotenv:
        env.read_env(Path.cwd() / ".env", recurse=False)
    positive = Range(min=0)
    at_least_one = Range(min=1)
    return Settings(
        openai_api_key=env.str("OPENAI_API_KEY", None) or None,
        anthropic_api_key=env.str("ANTHROPIC_API_KEY", None) or None,
        google_api_key=env.str("GOOGLE_API_KEY", None) or None,
        admin_api_key=env.str("ADMIN_API_KEY", None) or None,
        cost_tracking_enabled=_read(env, "bool", "COST_TRACKING_ENABLED", True),
        monthly_cost_limit=_read(env, "float", "MONTHLY_COST_LIMIT", 1000.0, validate=positive),
        rate_limit_requests=_read(env, "int", "RATE_LIMIT_REQUESTS", 100, validate=at_least_one),
        rate_limit_window=_read(env, "int", "RATE_LIMIT_WINDOW", 60, validate=at_least_one),
        redis_url=_check_url("REDIS_URL", env.str("REDIS_URL", "redis://localhost:6379/0"), ("redis", "rediss", "unix")),
        redis_password=env.str("REDIS_PASSWORD", None) or None,
        redis_prefix=env.str("REDIS_PREFIX", "orch:"),
        redis_sentinels=(sentinels := _sentinels(env)),
        redis_sentinel_master=env.str("REDIS_SENTINEL_MASTER", "mymaster") or "mymaster",
        redis_wait_replicas=_read(env, "int", "REDIS_WAIT_REPLICAS", 1 if sentinels else 0, validate=positive),
        redis_wait_timeout=_read(env, "float", "REDIS_WAIT_TIMEOUT", 0.5, validate=Range(min=0.001)),
        broker_redis_url=(_check_url("BROKER_URL", env.str("BROKER_URL"), ("redis", "rediss"))
                          if env.str("BROKER_URL", "") else None),
        default_model_provider=env.str("DEFAULT_MODEL_PROVIDER", "openai"),
        default_model_name=env.str("DEFAULT_MODEL_NAME", "gpt-4"),
        default_temperature=_read(env, "float", "DEFAULT_TEMPERATURE", 0.7, validate=Range(min=0, max=2)),
        default_max_tokens=_read(env, "int", "DEFAULT_MAX_TOKENS", 2048, validate=at_least_one),
        sandbox_url=_check_url("SANDBOX_URL", env.str("SANDBOX_URL", "http://127.0.0.1:8100"), ("http", "https")),
        sandbox_latency_scale=_read(env, "float", "SANDBOX_LATENCY_SCALE", 1.0, validate=positive),
        sandbox=_read(env, "str", "SANDBOX", "auto", validate=OneOf(("auto", "on", "off"))),
        models_file=env.str("MODELS_FILE", None) or None,
        request_timeout=_read(env, "float", "REQUEST_TIMEOUT", 60.0, validate=Range(min=1)),
        first_token_timeout=_read(env, "float", "FIRST_TOKEN_TIMEOUT", 10.0, validate=Range(min=0.1)),
        max_models_per_request=_read(env, "int", "MAX_MODELS_PER_REQUEST", 3, validate=Range(min=1, max=10)),
        retry_after_limit=_read(env, "float", "RETRY_AFTER_LIMIT", 5.0, validate=positive),
        circuit_min_calls=_read(env, "int", "CIRCUIT_MIN_CALLS", 5, validate=at_least_one),
        circuit_failure_rate=_read(env, "float", "CIRCUIT_FAILURE_RATE", 0.5, validate=Range(min=0.01, max=1)),
        circuit_open_seconds=_read(env, "float", "CIRCUIT_OPEN_SECONDS", 30.0, validate=Range(min=0.1)),
        max_body_bytes=_read(env, "int", "MAX_BODY_BYTES", 1024 * 1024, validate=Range(min=1024)),
        cors_origins=tuple(_read(env, "list", "CORS_ORIGINS", [])),
        result_ttl=_read(env, "int", "RESULT_TTL", 86400, validate=Range(min=60)),
        visibility_timeout=_read(env, "int", "VISIBILITY_TIMEOUT", 300, validate=Range(min=2)),
        worker_concurrency=_read(env, "int", "WORKER_CONCURRENCY", 32, validate=at_least_one),
        batch_max_items=_read(env, "int", "BATCH_MAX_ITEMS", 10_000, validate=at_least_one),
        batch_max_body_bytes=_read(env, "int", "BATCH_MAX_BODY_BYTES", 64 * 1024 * 1024, validate=Range(min=1024)),
        provider_limit_window=_read(env, "float", "PROVIDER_LIMIT_WINDOW", 60.0, validate=Range(min=0.1)),
        batch_limit_share=_read(env, "float", "BATCH_LIMIT_SHARE", 0.8, validate=Range(min=0.01, max=1)),
        log_level=_read(env, "str", "LOG_LEVEL", "INFO", validate=OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])),
        run_dir=env.str("RUN_DIR", ".run") or ".run",
        alert_webhook_url=(_check_url("ALERT_WEBHOOK_URL", env.str("ALERT_WEBHOOK_URL", ""), ("http", "https"))
                           if env.str("ALERT_WEBHOOK_URL", "") else None),
        log_format=_read(env, "str", "LOG_FORMAT", "json", validate=OneOf(["json", "text"])),
        degradation_factor=_read(env, "float", "DEGRADATION_FACTOR", 2.0, validate=Range(min=1, min_inclusive=False)),
        # Latencies are counted in buckets up to 60 s (orchestrator/store/stats.py): a p95 never reads higher.
        degradation_p95_seconds=(_read(env, "float", "DEGRADATION_P95_SECONDS", None,
                                       validate=Range(min=0.001, max=60, max_inclusive=False))
                                 if env.str("DEGRADATION_P95_SECONDS", "") else None),
        cost_anomaly_factor=_read(env, "float", "COST_ANOMALY_FACTOR", 5.0, validate=Range(min=1, min_inclusive=False)),
        cost_anomaly_min_spend=_read(env, "float", "COST_ANOMALY_MIN_SPEND", 1.0,
                                     validate=Range(min=0, min_inclusive=False)),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
