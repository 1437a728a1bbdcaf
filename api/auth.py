"""Who is calling: every request but health, docs, metrics and the dashboard's page and files names its API key in
`Authorization: Bearer <key>` (or, as Anthropic's clients send it, `x-api-key: <key>`), and every key but the admin's
is rate limited.

The caller's user is `current_user()` (kept in `flask.g.user`); the state of its key's rate
limit goes out in X-RateLimit-* headers on every answer to it. `BearerAuthDocs` writes the
same rules into the OpenAPI spec.
"""

from __future__ import annotations

from apispec import BasePlugin
from flask import Flask, Response, current_app, g, request

from api import API_PREFIX, services
from api.errors import ApiError, ErrorResponseSchema
from orchestrator.store.rate_limit import RateLimit
from orchestrator.store.users import User

PUBLIC_PATHS = (f"{API_PREFIX}/health", f"{API_PREFIX}/openapi.json", "/docs", "/metrics", "/dashboard")
SCHEME = "bearerAuth"


def is_public(path: str) -> bool:
    return any(path == public or path.startswith(public + "/") for public in PUBLIC_PATHS)


def current_user() -> User:
    return g.user


def require_admin() -> None:
    if not current_user().admin:
        raise ApiError(403, "forbidden", "Only the admin key (ADMIN_API_KEY) may do this.")


def rate_limit_headers(limit: RateLimit) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit.limit),
        "X-RateLimit-Remaining": str(limit.remaining),
        "X-RateLimit-Reset": str(limit.reset_after),
    }


def _presented_key() -> str:
    """The key of `Authorization: Bearer <key>`, else of `x-api-key` (Anthropic's header)."""
    if "Authorization" not in request.headers and request.headers.get("x-api-key", "").strip():
        return request.headers["x-api-key"].strip()
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        raise ApiError(
            401, "unauthorized",
            "Send your API key in the header `Authorization: Bearer <key>` (or `x-api-key: <key>`) "
            "(an administrator creates keys with `orchestrator users create`).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


def _authenticate() -> Response | None:
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        # A browser's CORS preflight carries no credentials: answered here, before any other
        # hook or view; flask-cors adds the allowed origin, methods and headers (if any).
        return current_app.make_default_options_response()
    if is_public(request.path):
        return None
    identity = services().users.authenticate(_presented_key(), services().rate_limiter)
    if identity is None:
        raise ApiError(
            401, "unauthorized", "The API key is invalid or revoked; ask an administrator for a new one.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    g.user = identity.user
    if identity.key_id is None:  # the admin key from the environment is not limited
        return None
    g.rate_limit = limit = identity.limit
    if not limit.allowed:
        raise ApiError(
            429, "rate_limited",
            f"More than {limit.limit} requests in {limit.window}s with this key; retry in {limit.reset_after}s.",
            headers={"Retry-After": str(limit.reset_after)},
        )
    return None


def _add_rate_limit_headers(response):
    limit = g.get("rate_limit")
    if limit is not None:
        response.headers.update(rate_limit_headers(limit))
    return response


def register_auth(app: Flask) -> None:
    """Authenticate before anything else looks at the request (content type, body)."""
    app.before_request(_authenticate)
    app.after_request(_add_rate_limit_headers)


def _integer_header(description: str) -> dict:
    return {"description": description, "schema": {"type": "integer"}}


class BearerAuthDocs(BasePlugin):
    """The bearer scheme in the OpenAPI spec: required everywhere but on the public paths,
    where an operation says `security: []`; the others document their 401 and 429."""

    def init_spec(self, spec) -> None:
        super().init_spec(spec)
        spec.components.security_scheme(
            SCHEME, {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`"}
        )
        spec.options["security"] = [{SCHEME: []}]
        content = {"application/json": {"schema": ErrorResponseSchema}}
        spec.components.response(
            "Unauthorized", {"description": "No API key, a malformed header, or an invalid or revoked key",
                             "content": content, "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
        )
        spec.components.response(
            "RateLimited",
            {
                "description": "More requests with this key than RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW",
                "content": content,
                "headers": {
                    "Retry-After": _integer_header("Seconds to wait"),
                    "X-RateLimit-Limit": _integer_header("Requests allowed per window"),
                    "X-RateLimit-Remaining": _integer_header("Requests left in the window"),
                    "X-RateLimit-Reset": _integer_header("Seconds until the oldest request leaves the window"),
                },
            },
        )

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for operation in (operations or {}).values():
            if is_public(path):
                operation["security"] = []
            else:
                operation.setdefault("responses", {}).update({401: "Unauthorized", 429: "RateLimited"})
