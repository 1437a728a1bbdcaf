"""Users and API keys over HTTP, for the admin key only (the CLI does the same: `orchestrator users`)."""

from __future__ import annotations

import dataclasses

from flask.views import MethodView

from api import services
from api.auth import require_admin
from api.errors import ApiError, Blueprint, ErrorResponseSchema
from api.schemas import ApiKeySchema, IssuedKeySchema, UserCreatedSchema, UserCreateSchema, UserSchema
from orchestrator.store.users import IssuedKey, NotFound

blp = Blueprint("admin", __name__, description="Users and API keys (admin key only)")
blp.before_request(require_admin)


def _issued(issued: IssuedKey) -> dict:
    return {**dataclasses.asdict(issued.info), "key": issued.key}


def _admin_only(view):
    return blp.alt_response(403, schema=ErrorResponseSchema, description="Not the admin key")(view)


def _not_found(view):
    return blp.alt_response(404, schema=ErrorResponseSchema, description="No such user or key")(view)


def _found(call, *args):
    try:
        return call(*args)
    except NotFound as exc:
        raise ApiError(404, "not_found", f"There is {exc}.") from None


@blp.route("/users")
class AdminUsers(MethodView):
    @blp.arguments(UserCreateSchema())
    @blp.response(201, UserCreatedSchema)
    @_admin_only
    def post(self, body: dict):
        """Create a user and its first API key (the key is shown in this answer only)."""
        user, issued = services().users.create(body["name"].strip(), body.get("monthly_budget"))
        return {"user": user, "key": _issued(issued)}

    @blp.response(200, UserSchema(many=True))
    @_admin_only
    def get(self):
        """List every user, oldest first."""
        return services().users.list_all()


@blp.route("/users/<user_id>/keys")
class AdminUserKeys(MethodView):
    @blp.response(201, IssuedKeySchema)
    @_admin_only
    @_not_found
    def post(self, user_id: str):
        """Issue another API key to a user (the key is shown in this answer only)."""
        return _issued(_found(services().users.issue_key, user_id))

    @blp.response(200, ApiKeySchema(many=True))
    @_admin_only
    @_not_found
    def get(self, user_id: str):
        """List a user's API keys, revoked ones included (never the keys themselves)."""
        return _found(services().users.keys, user_id)


@blp.route("/keys/<key_id>")
class AdminKey(MethodView):
    @blp.response(200, ApiKeySchema)
    @_admin_only
    @_not_found
    def delete(self, key_id: str):
        """Revoke an API key for good."""
        return _found(services().users.revoke, key_id)
