"""Schemathesis over the OpenAPI spec: no 5xx and no response that contradicts the spec."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app

schema = schemathesis.openapi.from_wsgi("/api/v1/orchestrator/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_honours_its_spec(case, worker):
    case.call_and_validate()
