"""The HTTP API: validates, authenticates, enqueues and reads back. It never calls a provider."""

from __future__ import annotations

from flask import Flask, current_app
from flask_cors import CORS

from api.dashboard import SWAGGER_UI_URL
from api.errors import OrchestratorApi, register_error_handlers, register_header_limits
from orchestrator.config import get_settings
from orchestrator.runtime.services import Services

API_PREFIX = "/api/v1/orchestrator"
# What a browser client may read of an answer besides the simple headers.
EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                   "x-orchestrator-model", "x-orchestrator-provider", "x-orchestrator-cost", "x-should-retry"]


def create_app(services: Services | None = None) -> Flask:
    services = services or Services.from_settings(get_settings())
    app = Flask("orchestrator")
    app.config.update(
        API_TITLE="AI Model Orchestrator",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH=API_PREFIX.lstrip("/") + "/openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,  # swagger-ui-bundle's files, served by api/dashboard.py
        MAX_CONTENT_LENGTH=services.settings.max_body_bytes,
    )
    app.extensions["orchestrator"] = services

    from api import batch, chat, health, models, openai_compat, preferences, responses, streaming, users
    from api.auth import BearerAuthDocs, register_auth
    from api.schemas import document_catalog_models

    api = OrchestratorApi(app, spec_kwargs={"extra_plugins": [BearerAuthDocs()]})
    document_catalog_models(api, services.catalog)
    from api.observability import register_request_ids

    register_request_ids(app)  # first: every answer, a 401 included, carries its X-Request-ID
    register_header_limits(app)
    if services.settings.cors_origins:
        CORS(app, origins=list(services.settings.cors_origins), expose_headers=EXPOSED_HEADERS, max_age=600)
    register_auth(app)
    register_error_handlers(app)

    api.register_blueprint(chat.blp, url_prefix=f"{API_PREFIX}/chat")
    api.register_blueprint(streaming.blp, url_prefix=f"{API_PREFIX}/chat")
    api.register_blueprint(health.blp, url_prefix=API_PREFIX)
    api.register_blueprint(models.blp, url_prefix=f"{API_PREFIX}/models")
    api.register_blueprint(preferences.blp, url_prefix=API_PREFIX)
    api.register_blueprint(users.blp, url_prefix=f"{API_PREFIX}/admin")
    from api import analytics, dashboard, metrics

    api.register_blueprint(analytics.blp, url_prefix=API_PREFIX)
    api.register_blueprint(analytics.admin_blp, url_prefix=f"{API_PREFIX}/admin")
    app.register_blueprint(metrics.blp)  # GET /metrics, Prometheus text, outside the spec
    app.register_blueprint(dashboard.blp)  # GET /dashboard, a page outside the spec
    app.register_blueprint(dashboard.swagger_assets)
    api.register_blueprint(batch.blp, url_prefix=f"{API_PREFIX}/batch")
    batch.document(api)
    from api import anthropic_compat, embeddings, openai_batches
    from api.doors import register_doors

    app.register_blueprint(openai_compat.blp)  # OpenAI's wire format at /v1, outside the spec (see the module)
    app.register_blueprint(anthropic_compat.blp)  # Anthropic's at /v1/messages, likewise
    app.register_blueprint(responses.blp)  # OpenAI's Responses API at /v1/responses, likewise
    app.register_blueprint(openai_batches.blp)  # OpenAI's /v1/files and /v1/batches, likewise
    app.register_blueprint(embeddings.blp)  # OpenAI's /v1/embeddings, likewise
    register_doors(app)  # every error under /v1 in the shape of the door it came through
    return app


def services() -> Services:
    return current_app.extensions["orchestrator"]
