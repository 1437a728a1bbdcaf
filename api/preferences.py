"""The caller's routing preferences and monthly budget."""

from __future__ import annotations

import dataclasses

from flask.views import MethodView

from api import services
from api.auth import current_user
from api.errors import ApiError, Blueprint, ErrorResponseSchema
from api.schemas import PreferencesSchema, PreferencesUpdateSchema
from orchestrator.store.users import NotFound, User

blp = Blueprint("preferences", __name__, description="Your routing preferences and monthly budget")


def _preferences(user: User) -> dict:
    preferences = dataclasses.asdict(user.preferences)
    preferences["preferred_models"] = preferences["preferred_models"] or {}
    return {**preferences, "monthly_budget": user.monthly_budget}


@blp.route("/preferences")
class Preferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self):
        """Get your preferences: what routing weighs, preferred models, monthly budget."""
        return _preferences(current_user())


@blp.route("/preferences/update")
class PreferencesUpdate(MethodView):
    @blp.arguments(PreferencesUpdateSchema(), required=False)
    @blp.response(200, PreferencesSchema)
    @blp.alt_response(404, schema=ErrorResponseSchema, description="The admin key has no stored preferences")
    def post(self, changes: dict):
        """Update your preferences; fields left out keep their values."""
        try:
            return _preferences(services().users.update_preferences(current_user().id, changes))
        except NotFound:
            raise ApiError(
                404, "not_found", "The admin key has no preferences of its own; use a user's API key."
            ) from None
