"""GET /preferences and POST /preferences/update: validated, strict, stored per user."""

from __future__ import annotations

import pytest

PREFERENCES = "/api/v1/orchestrator/preferences"
UPDATE = f"{PREFERENCES}/update"


@pytest.fixture
def client(app, api_key):
    """The API with a user's key; preferences need no worker."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client


def test_a_new_user_has_the_defaults(client, settings):
    assert client.get(PREFERENCES).get_json() == {
        "cost_sensitivity": 0.5, "speed_preference": 0.5, "quality_preference": 0.5,
        "monthly_budget": settings.monthly_cost_limit, "preferred_models": {},
    }


def test_an_update_is_stored_and_answered(client):
    body = {
        "cost_sensitivity": 0.9, "speed_preference": 0, "quality_preference": 1, "monthly_budget": 42.5,
        "preferred_models": {"simple": ["gemini-2.5-flash", "gpt-4o-mini"], "expert": ["o3-mini"]},
    }
    reply = client.post(UPDATE, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.get_json() == body
    assert client.get(PREFERENCES).get_json() == body


def test_fields_left_out_keep_their_values_and_an_empty_list_clears_a_level(client):
    client.post(UPDATE, json={"cost_sensitivity": 0.2, "preferred_models": {"simple": ["gpt-4o"], "complex": ["gpt-4"]}})
    reply = client.post(UPDATE, json={"quality_preference": 0.7, "preferred_models": {"simple": []}})
    assert reply.get_json()["cost_sensitivity"] == 0.2
    assert reply.get_json()["quality_preference"] == 0.7
    assert reply.get_json()["preferred_models"] == {"complex": ["gpt-4"]}


@pytest.mark.parametrize(
    "body, field, says",
    [
        ({"cost_sensitivity": 1.5}, "cost_sensitivity", "less than or equal to 1"),
        ({"speed_preference": -0.1}, "speed_preference", "greater than or equal to 0"),
        ({"quality_preference": "high"}, "quality_preference", "Not a valid number"),
        ({"monthly_budget": 0}, "monthly_budget", "greater than 0"),
        ({"preferred_models": {"simple": ["gpt-9"]}}, "preferred_models.simple.0", "Unknown model 'gpt-9'"),
        ({"preferred_models": {"trivial": ["gpt-4"]}}, "preferred_models.trivial", "Unknown field"),
        ({"preferred_models": {"simple": "gpt-4"}}, "preferred_models.simple", "Not a valid list"),
        ({"colour": "blue"}, "colour", "Unknown field"),
    ],
)
def test_invalid_updates_are_422_naming_the_field(client, body, field, says):
    reply = client.post(UPDATE, json=body)
    assert reply.status_code == 422
    error = reply.get_json()["error"]
    assert error["code"] == "validation_error"
    assert f"{field}: " in error["message"] and says in error["message"], error["message"]
    assert client.get(PREFERENCES).get_json()["cost_sensitivity"] == 0.5


def test_the_admin_key_has_no_preferences_to_update(app, settings, redis_client):
    reply = app.test_client().post(UPDATE, json={"cost_sensitivity": 1},
                                   headers={"Authorization": f"Bearer {settings.admin_api_key}"})
    assert reply.status_code == 404
    assert "use a user's API key" in reply.get_json()["error"]["message"]
