import subprocess
import sys

import pytest

from orchestrator.config import ConfigError, load_settings


def test_defaults_are_the_briefs(monkeypatch):
    for name in ("MONTHLY_COST_LIMIT", "RATE_LIMIT_REQUESTS", "DEFAULT_MODEL_NAME", "COST_TRACKING_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(read_dotenv=False)
    assert settings.monthly_cost_limit == 1000.0
    assert settings.rate_limit_requests == 100
    assert settings.default_model_name == "gpt-4"
    assert settings.cost_tracking_enabled is True


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("MONTHLY_COST_LIMIT", "abc", "expected a number"),
        ("MONTHLY_COST_LIMIT", "-5", "expected a number"),
        ("RATE_LIMIT_REQUESTS", "1.5", "expected a whole number"),
        ("COST_TRACKING_ENABLED", "perhaps", "expected true or false"),
        ("REDIS_URL", "localhost:6379", "expected a URL starting with redis://"),
        ("REDIS_SENTINELS", "sentinel-0", "expected host:port pairs"),
        ("REDIS_WAIT_REPLICAS", "-1", "expected a whole number"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_form(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(read_dotenv=False)
    message = str(caught.value)
    assert message.startswith(f"{name}=") and expected in message
    assert "\n" not in message


def test_start_up_stops_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.runtime.cli", "check-config"],
        env={"MONTHLY_COST_LIMIT": "abc", "PATH": "/usr/bin:/bin", "COLUMNS": "60"},
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "MONTHLY_COST_LIMIT='abc'" in result.stderr and "expected a number" in result.stderr


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("DEFAULT_MAX_TOKENS", raising=False)
    (tmp_path / ".env").write_text("DEFAULT_MAX_TOKENS=512\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().default_max_tokens == 512


def test_redis_password_is_folded_into_the_broker_url_and_never_shown(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6380/2")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-secret")
    settings = load_settings(read_dotenv=False)
    assert settings.redis_url_with_password == "redis://:s3cret@cache.internal:6380/2"
    assert "s3cret" not in repr(settings) and "sk-live-secret" not in repr(settings)


def test_the_admin_key_is_read_and_never_shown(monkeypatch):
    monkeypatch.setenv("ADMIN_API_KEY", "admin-secret-key")
    settings = load_settings(read_dotenv=False)
    assert settings.admin_api_key == "admin-secret-key"
    assert "admin-secret-key" not in repr(settings)


def test_sentinels_make_the_broker_a_list_of_sentinels_and_writes_wait_for_a_replica(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://ignored:6379/3")
    monkeypatch.setenv("REDIS_PASSWORD", "secret")
    monkeypatch.setenv("REDIS_SENTINELS", "s0:26379, s1:26380")
    settings = load_settings(read_dotenv=False)
    assert settings.redis_sentinels == (("s0", 26379), ("s1", 26380))
    assert settings.broker_url == "sentinel://:secret@s0:26379/3;sentinel://:secret@s1:26380/3"
    assert settings.redis_wait_replicas == 1
    monkeypatch.delenv("REDIS_SENTINELS")
    plain = load_settings(read_dotenv=False)
    assert plain.broker_url == "redis://:secret@ignored:6379/3" and plain.redis_wait_replicas == 0


def test_broker_url_puts_the_queues_apart_even_beside_sentinels(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", "s0:26379")
    monkeypatch.setenv("BROKER_URL", "redis://:queue-secret@queues:6379/0")
    settings = load_settings(read_dotenv=False)
    assert settings.broker_url == "redis://:queue-secret@queues:6379/0" and not settings.broker_through_sentinels
    assert "queue-secret" not in repr(settings)
    monkeypatch.setenv("BROKER_URL", "amqp://guest@rabbit//")
    with pytest.raises(ConfigError, match="BROKER_URL"):
        load_settings(read_dotenv=False)
