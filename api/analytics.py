"""Alerts, analytics and feedback over HTTP.

- GET /alerts: the caller's alerts (their budget and spend); the admin sees every alert.
- GET /analytics/user: the caller's month (the admin may name a user with ?user_id=).
- GET /analytics/models?window=hour|day|30d: every model, from the recorded counters.
- GET /analytics/spend?days=N: the caller's spend per model per day and top cost drivers (the
  admin: everyone's, or one user's with ?user_id=).
- GET /analytics/requests: the caller's newest chat requests, the cost estimated beside the cost billed.
- GET /admin/analytics?days=N: spend per user and model per day, top cost drivers (admin).
- POST /feedback: rate one of your own requests.
"""

from __future__ import annotations

import time

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from api import services
from api.auth import current_user, require_admin
from api.errors import ApiError, Blueprint, ErrorResponseSchema
from orchestrator.core.job import ADMIN_ID, ChatResult
from orchestrator.runtime import analytics
from orchestrator.store.users import User

blp = Blueprint("analytics", __name__, description="Alerts, analytics and feedback")
admin_blp = Blueprint("admin_analytics", __name__, description="Analytics across users (admin key only)")
admin_blp.before_request(require_admin)


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# --- schemas

class AlertsQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    kind = fields.String(load_default=None, validate=validate.OneOf(
        ["budget_threshold", "model_outage", "performance_degradation", "cost_anomaly", "worker_lost"]))


class AlertSchema(ma.Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "budget_threshold, model_outage, "
                                                  "performance_degradation, cost_anomaly or worker_lost"})
    severity = fields.String(required=True, metadata={"description": "info, warning or critical"})
    subject = fields.String(required=True, metadata={"description": "What it is about: a user, model or worker"})
    message = fields.String(required=True)
    details = fields.Dict(required=True)
    time = fields.Float(required=True, metadata={"description": "Unix time"})
    user_id = fields.String(allow_none=True, required=True)


class AlertsSchema(ma.Schema):
    alerts = fields.List(fields.Nested(AlertSchema), required=True)
    count = fields.Integer(required=True)


class UserQuerySchema(StrictSchema):
    user_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64),
                            metadata={"description": "Admin key only: the user to report on"})


class SpendQuerySchema(UserQuerySchema):
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=40))
    top = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class RecentQuerySchema(UserQuerySchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class RecentRequestSchema(ma.Schema):
    request_id = fields.String(required=True)
    status = fields.String(required=True)
    created_at = fields.Float(required=True, metadata={"description": "Unix time"})
    finished_at = fields.Float(required=True, allow_none=True)
    model = fields.String(required=True, allow_none=True, metadata={"description": "The model that answered"})
    complexity = fields.String(required=True, allow_none=True)
    estimated_cost = fields.Float(required=True, allow_none=True, metadata={"description": "USD, routing's estimate"})
    cost = fields.Float(required=True, allow_none=True, metadata={"description": "USD billed"})
    error = fields.String(required=True, allow_none=True, metadata={"description": "A failed request's error code"})


class RecentRequestsSchema(ma.Schema):
    user_id = fields.String(required=True)
    requests = fields.List(fields.Nested(RecentRequestSchema), required=True)


class RecommendationSchema(ma.Schema):
    kind = fields.String(required=True, metadata={"description": "cheaper_model or budget_pace"})
    message = fields.String(required=True)
    savings = fields.Float(required=True, metadata={"description": "USD at stake this month"})
    details = fields.Dict(required=True)


class UserMetricsSchema(ma.Schema):
    monthly_budget = fields.Float(required=True, metadata={"description": "USD"})
    current_spend = fields.Float(required=True, metadata={"description": "USD settled this month"})
    reserved = fields.Float(required=True, metadata={"description": "USD held by requests in flight"})
    budget_utilization = fields.Float(required=True, metadata={"description": "Percent of the budget spent"})
    cost_sensitivity = fields.Float(required=True)
    preferred_models = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                                   metadata={"description": "Per complexity: explicit, else learned"})
    explicit_preferred_models = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    learned_preferred_models = fields.Dict(required=True, metadata={"description": "Per complexity: models "
                                                                    "with their decayed scores"})
    requests = fields.Integer(required=True)
    usage_by_complexity = fields.Dict(required=True)


class RatingGivenSchema(ma.Schema):
    request_id = fields.String(required=True)
    model = fields.String(required=True)
    complexity = fields.String(required=True)
    task_type = fields.String(required=True)
    rating = fields.Integer(allow_none=True, required=True, metadata={"description": "1 to 5, or null for thumbs"})
    thumbs = fields.String(required=True, metadata={"description": "up, down, or empty for a 1-5 rating"})
    comment = fields.String(required=True)
    time = fields.Float(required=True, metadata={"description": "Unix time"})


class UserAnalyticsSchema(ma.Schema):
    user_id = fields.String(required=True)
    month = fields.String(required=True)
    metrics = fields.Nested(UserMetricsSchema, required=True)
    recommendations = fields.List(fields.Nested(RecommendationSchema), required=True)
    ratings_given = fields.List(fields.Nested(RatingGivenSchema), required=True,
                                metadata={"description": "The user's latest ratings (50 at most), newest first"})


class WindowQuerySchema(StrictSchema):
    window = fields.String(load_default="day", validate=validate.OneOf(list(analytics.WINDOWS)))


class ModelAnalyticsSchema(ma.Schema):
    model = fields.String(required=True)
    provider = fields.String(required=True)
    requests = fields.Integer(required=True, metadata={"description": "Attempts on this model"})
    successes = fields.Integer(required=True)
    failures = fields.Integer(required=True)
    success_rate = fields.Float(required=True, allow_none=True)
    failures_by_class = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    latency = fields.Dict(required=True, metadata={"description": "Seconds: p50, p95 (from the histogram), mean"})
    time_to_first_token = fields.Dict(required=True, metadata={"description": "Seconds: p50, p95, mean"})
    tokens = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    cost = fields.Float(required=True)
    cost_per_1k_tokens = fields.Float(required=True, allow_none=True)
    fallbacks = fields.Integer(required=True, metadata={"description": "Attempts that were not the first choice"})
    circuit = fields.String(required=True, allow_none=True)


class ModelsAnalyticsSchema(ma.Schema):
    window = fields.String(required=True)
    from_ = fields.Float(required=True, data_key="from", attribute="from")
    to = fields.Float(required=True)
    models = fields.List(fields.Nested(ModelAnalyticsSchema), required=True)


class DaysQuerySchema(StrictSchema):
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=40))
    top = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class AdminAnalyticsSchema(ma.Schema):
    from_ = fields.String(required=True, allow_none=True, data_key="from", attribute="from")
    to = fields.String(required=True, allow_none=True)
    total_cost = fields.Float(required=True)
    days = fields.List(fields.Dict(), required=True)
    spend_by_user = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    spend_by_model = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    top_cost_drivers = fields.List(fields.Dict(), required=True)


class Rating(fields.Field):
    """1 to 5, or the thumbs "up" or "down"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return value
        if value in ("up", "down"):
            return value
        raise ma.ValidationError('must be a whole number from 1 to 5, or "up" or "down".')


class FeedbackSchema(StrictSchema):
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    rating = Rating(required=True, metadata={
        "description": "1 (bad) to 5 (excellent), or thumbs: \"up\" or \"down\"",
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string", "enum": ["up", "down"]}],
    })
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class FeedbackResultSchema(ma.Schema):
    request_id = fields.String(required=True)
    model = fields.String(required=True)
    complexity = fields.String(required=True)
    task_type = fields.String(required=True)
    rating = fields.Integer(allow_none=True, required=True)
    thumbs = fields.String(allow_none=True, required=True)
    learned_preferred_models = fields.Dict(required=True)


# --- endpoints

def _subject(user_id: str | None) -> User:
    """Whom a report is about: the caller, or for the admin key the user it names."""
    user = current_user()
    if not user_id or user_id == user.id:
        return user
    if not user.admin:
        raise ApiError(404, "not_found", "There is no such user.")
    named = services().users.get(user_id)
    if named is None:
        raise ApiError(404, "not_found", f"There is no user {user_id!r}.")
    return named


def _last_days(count: int) -> list[str]:
    now = time.time()
    return [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * i)) for i in range(count)]


@blp.route("/alerts")
class Alerts(MethodView):
    @blp.arguments(AlertsQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, AlertsSchema)
    def get(self, query: dict):
        """Alerts, newest first: yours (budget thresholds, spend anomalies); the admin sees every alert."""
        user = current_user()
        alerts = services().alerts.recent(None if user.admin else user.id, query["limit"], query["kind"])
        return {"alerts": alerts, "count": len(alerts)}


@blp.route("/analytics/user")
class UserAnalytics(MethodView):
    @blp.arguments(UserQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, UserAnalyticsSchema)
    @blp.alt_response(404, schema=ErrorResponseSchema, description="No such user (admin key with user_id)")
    def get(self, query: dict):
        """Your month: budget, spend, utilization, preferred models (explicit and learned),
        recommendations priced from your real usage, and the ratings you gave."""
        svc = services()
        user = _subject(query["user_id"])
        spent, held = svc.budgets.usage(user.id)
        scores = svc.learning.learned_scores(user.id) if user.id != ADMIN_ID else {}
        report = analytics.user_report(
            user.id, user.monthly_budget, spent, held, user.preferences.cost_sensitivity,
            dict(user.preferences.preferred_models or {}), scores, svc.learning.defaults(scores),
            svc.usage.month(user.id), svc.catalog,
        )
        return {**report, "ratings_given": svc.learning.ratings(user.id)}


@blp.route("/analytics/models")
class ModelAnalytics(MethodView):
    @blp.arguments(WindowQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, ModelsAnalyticsSchema)
    def get(self, query: dict):
        """Per model over the window (hour, day, 30d): requests, success rate, failures by class,
        latency and time to first token (p50, p95), tokens, cost, cost per 1K tokens,
        fallbacks, circuit state; all from the recorded counters."""
        svc = services()
        return analytics.models_report(svc.stats, svc.circuits, svc.catalog, query["window"])


@admin_blp.route("/analytics")
class AdminAnalytics(MethodView):
    @admin_blp.arguments(DaysQuerySchema(), location="query", unknown=ma.RAISE)
    @admin_blp.response(200, AdminAnalyticsSchema)
    @admin_blp.alt_response(403, schema=ErrorResponseSchema, description="Not the admin key")
    def get(self, query: dict):
        """Spend per user and per model for each of the last `days` days (UTC), and the top cost drivers."""
        return analytics.admin_report(services().usage.days(_last_days(query["days"])), query["top"])


@blp.route("/analytics/spend")
class Spend(MethodView):
    @blp.arguments(SpendQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, AdminAnalyticsSchema)
    @blp.alt_response(404, schema=ErrorResponseSchema, description="No such user (admin key with user_id)")
    def get(self, query: dict):
        """Your spend per model for each of the last `days` days (UTC) and your top cost drivers; the
        admin key sees every user's, or one user's with `user_id`."""
        days = services().usage.days(_last_days(query["days"]))
        if not current_user().admin or query["user_id"]:
            subject = _subject(query["user_id"]).id
            days = {day: [row for row in rows if row["user_id"] == subject] for day, rows in days.items()}
        return analytics.admin_report(days, query["top"])


@blp.route("/analytics/requests")
class RecentRequests(MethodView):
    @blp.arguments(RecentQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, RecentRequestsSchema)
    @blp.alt_response(404, schema=ErrorResponseSchema, description="No such user (admin key with user_id)")
    def get(self, query: dict):
        """Your newest chat requests (batch items not included), newest first: status, model, and
        the cost routing estimated beside the cost billed."""
        user = _subject(query["user_id"])
        return {"user_id": user.id, "requests": services().requests.recent(user.id, query["limit"])}


@blp.route("/feedback")
class Feedback(MethodView):
    @blp.arguments(FeedbackSchema())
    @blp.response(200, FeedbackResultSchema)
    @blp.alt_response(404, schema=ErrorResponseSchema, description="No such request of yours")
    @blp.alt_response(409, schema=ErrorResponseSchema, description="Not answered yet, or already rated")
    def post(self, body: dict):
        """Rate one of your requests (1 to 5, or thumbs): it moves your learned preferences and
        the model's observed quality for that task type."""
        svc = services()
        user = current_user()
        record = svc.requests.get(body["request_id"])
        if record is None or record.get("owner") != user.id:
            raise ApiError(404, "not_found", f"You have no request {body['request_id']!r} (records are kept "
                                             f"{svc.settings.result_ttl}s).")
        if record.get("status") != "completed" or not record.get("result"):
            raise ApiError(409, "not_completed", "Only an answered request can be rated; this one is "
                                                 f"{record.get('status', 'unknown')}.")
        result = ChatResult.from_json(record["result"])
        analysis = result.routing_decision.analysis
        complexity, task_type = (analysis.complexity, analysis.task_type) if analysis else ("unknown", "default")
        rating = body["rating"] if isinstance(body["rating"], int) else None
        thumbs = None if rating is not None else body["rating"]
        if not svc.learning.rate(body["request_id"], user.id, result.model_used, complexity, task_type,
                                 rating, thumbs, body["comment"]):
            raise ApiError(409, "already_rated", "This request was already rated.")
        svc.neighbourhoods.record_rating(result.routing_decision.prediction, result.model_used, rating, thumbs)
        scores = svc.learning.learned_scores(user.id)
        return {
            "request_id": body["request_id"], "model": result.model_used, "complexity": complexity,
            "task_type": task_type, "rating": rating, "thumbs": thumbs,
            "learned_preferred_models": {level: list(models) for level, models in svc.learning.defaults(scores).items()},
        }
