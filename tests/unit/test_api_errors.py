"""Bad input gets a 4xx JSON error that says what to fix, before anything is enqueued."""

import pytest

from api import create_app
from orchestrator.config import get_settings

EXECUTE = "/api/v1/orchestrator/chat/execute"


@pytest.fixture(scope="module")
def client():
    """Called with the admin key, which is checked without Redis and not rate limited."""
    client = create_app().test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {get_settings().admin_api_key}"
    return client


def error_of(reply):
    body = reply.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_invalid_json(client):
    reply = client.post(EXECUTE, data="{bad", content_type="application/json")
    assert reply.status_code == 400
    assert error_of(reply) == {"code": "invalid_json", "message": "The request body is not valid JSON."}


@pytest.mark.parametrize(
    "body, field, says",
    [
        ({}, "message", "Missing data for required field"),
        ({"message": ""}, "message", "Shorter than minimum length"),
        ({"message": "   "}, "message", "not only white space"),
        ({"message": 42}, "message", "Not a valid string"),
        ({"message": "hi", "temperature": "hot"}, "temperature", "Not a valid number"),
        ({"message": "hi", "temperature": 3}, "temperature", "less than or equal to 2"),
        ({"message": "hi", "strategy": "cheapest"}, "strategy", "Must be one of"),
        ({"message": "hi", "budget_limit": 0}, "budget_limit", "greater than 0"),
        ({"message": "hi", "colour": "blue"}, "colour", "Unknown field"),
        ([1, 2], "body", "Invalid input type"),
    ],
)
def test_invalid_fields_are_named(client, body, field, says):
    reply = client.post(EXECUTE, json=body)
    assert reply.status_code == 422
    error = error_of(reply)
    assert error["code"] == "validation_error"
    assert f"{field}: " in error["message"] and says in error["message"]


def test_two_megabyte_body_is_refused(client):
    reply = client.post(EXECUTE, data='{"message": "' + "a" * 2_000_000 + '"}', content_type="application/json")
    assert reply.status_code == 413
    assert "MAX_BODY_BYTES" in error_of(reply)["message"]


def test_a_form_body_is_refused_with_the_content_type_to_use(client):
    reply = client.post(EXECUTE, data={"message": "hi"})
    assert reply.status_code == 415
    assert "Content-Type: application/json" in error_of(reply)["message"]


def test_unknown_path_and_wrong_method(client):
    assert error_of(client.get("/api/v1/orchestrator/nothing-here"))["code"] == "not_found"
    reply = client.get(EXECUTE)
    assert reply.status_code == 405 and error_of(reply)["code"] == "method_not_allowed"


def test_openapi_spec_and_docs_are_served(client):
    spec = client.get("/api/v1/orchestrator/openapi.json").get_json()
    assert "/api/v1/orchestrator/chat/execute" in spec["paths"]
    assert "/api/v1/orchestrator/health" in spec["paths"]
    assert client.get("/docs").status_code == 200
