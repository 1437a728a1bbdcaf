"""Schemathesis over the OpenAPI spec: no 5xx and no response that contradicts the spec.

Admin operations are called with the admin key, the others with a new user's key."""

from __future__ import annotations

import dataclasses

import hypothesis
import schemathesis
from hypothesis import HealthCheck

from api import create_app
from orchestrator.config import get_settings
from orchestrator.runtime.services import Services

# Without a higher rate limit most examples of an operation would only meet 429
# (test_rate_limit.py tests the limit).
unlimited = dataclasses.replace(get_settings(), rate_limit_requests=1_000_000)
schema = schemathesis.openapi.from_wsgi("/api/v1/orchestrator/openapi.json", create_app(Services.from_settings(unlimited)))


@schema.parametrize()
@hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_honours_its_spec(case, worker, api_key, settings):
    if any(value is None or value == [] for value in (case.query or {}).values()):
        # werkzeug's test client drops a query parameter whose value is null or an empty
        # list: the server would never see what makes such a case invalid.
        return
    admin = case.path.startswith("/api/v1/orchestrator/admin/")
    case.call_and_validate(headers={"Authorization": f"Bearer {settings.admin_api_key if admin else api_key}"})
