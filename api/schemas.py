"""Request and response bodies (marshmallow), which are also the OpenAPI documentation."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import fields, validate

from api import services
from api.dataclass_schema import schema_of
from orchestrator.core.analysis import Complexity
from orchestrator.core.decision import Decision
from orchestrator.core.job import ChatResult
from orchestrator.core.strategies import RoutingStrategy

STRATEGIES = [s.value for s in RoutingStrategy]


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _only_valid_text(self, data, **kwargs):
        """Text a provider could not be sent (an unpaired surrogate such as "\\ud800", which JSON
        escapes allow) is the caller's to fix: refused here, naming the field, before it can
        reach a worker and fail there."""
        path = unencodable_path(data)
        if path is not None:
            raise ma.ValidationError({path: ["must be valid Unicode text: it holds an unpaired surrogate."]})
        return data


def unencodable_path(value) -> str | None:
    """The dotted path of the first string in `value` (JSON: dicts, lists, scalars) that cannot
    be encoded as UTF-8, or None. Iterative: a deeply nested body costs no recursion."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "body"
        elif isinstance(item, dict):
            stack.extend((f"{path}.{key}" if path else str(key), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}.{index}" if path else str(index), child) for index, child in enumerate(item))
    return None


class StrictFloat(fields.Float):
    """A JSON number only: no numeric strings, no booleans."""

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON true or false only (0 == False in Python, so sets of truthy values cannot say it)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


# White space as the spec's `\S` pattern (ECMAScript) reads it: Python's str.isspace() also counts
# the separators U+001C-U+001F and U+0085, which would refuse text the spec says is valid.
_TEXT = re.compile("[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")


def is_blank(text: str) -> bool:
    """Whether the text holds nothing but white space, as every door reads it."""
    return _TEXT.search(text) is None


def _not_blank(value: str) -> None:
    if is_blank(value):
        raise ma.ValidationError("must contain text, not only white space.")


class MessageSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(["system", "user", "assistant"]))
    content = fields.String(required=True)


class ChatRequestSchema(StrictSchema):
    message = fields.String(
        required=True,
        validate=[validate.Length(min=1), _not_blank],
        metadata={"description": "The user's message", "pattern": r"\S"},
    )
    history = fields.List(
        fields.Nested(MessageSchema),
        load_default=list,
        metadata={"description": "Earlier turns of the conversation, oldest first, before `message`"},
    )
    conversation_id = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{1,128}$"),
        metadata={
            "description": "Continue (or start) a conversation whose history the orchestrator keeps; "
            "1-128 letters, digits, _ . : -",
            "pattern": r"^[A-Za-z0-9_.:-]{1,128}$",
        },
    )
    model = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "Pin this catalog model (its fallbacks still apply); omit to let routing choose"},
    )
    strategy = fields.String(
        load_default=RoutingStrategy.BALANCED.value,
        validate=validate.OneOf(STRATEGIES),
        metadata={"description": "Routing strategy"},
    )
    system_prompt = fields.String(allow_none=True, load_default=None)
    temperature = StrictFloat(allow_none=True, load_default=None, validate=validate.Range(min=0, max=2))
    max_tokens = fields.Integer(strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=200_000))
    budget_limit = StrictFloat(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, min_inclusive=False),
        metadata={"description": "Most this request may cost, in USD", "exclusiveMinimum": True},
    )
    stream = StrictBoolean(load_default=False)
    timeout = StrictFloat(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=600),
        metadata={"description": "Seconds this request may take end to end [REQUEST_TIMEOUT]"},
    )
    first_token_timeout = StrictFloat(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0.1, max=600),
        metadata={"description": "Seconds a model may stay silent before the next one is tried [FIRST_TOKEN_TIMEOUT]"},
    )
    user = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=256),
        metadata={"description": "Your end user's id, recorded with the request (as OpenAI's `user`)"},
    )


RoutingDecisionSchema = schema_of(Decision)
ChatResultSchema = schema_of(ChatResult)


class HealthSchema(ma.Schema):
    status = fields.String(required=True, metadata={"description": "healthy or unhealthy"})
    reasons = fields.List(fields.String(), required=True)
    redis = fields.Dict(required=True)
    workers = fields.Dict(required=True)
    timestamp = fields.Float(required=True)


class ModelCapabilitiesSchema(ma.Schema):
    provider = fields.String(required=True)
    model_name = fields.String(required=True)
    max_tokens = fields.Integer(required=True, metadata={"description": "Largest output, in tokens"})
    context_window = fields.Integer(required=True)
    cost_per_1k_input = fields.Float(required=True, metadata={"description": "USD"})
    cost_per_1k_output = fields.Float(required=True, metadata={"description": "USD"})
    cost_per_1k_cached_input = fields.Float(allow_none=True)
    price_source = fields.String(required=True, metadata={"description": "genai-prices or models.yaml"})
    supports_code = fields.Boolean(required=True)
    supports_reasoning = fields.Boolean(required=True)
    supports_streaming = fields.Boolean(required=True)
    supports_vision = fields.Boolean(required=True)
    supports_assistant_prefill = fields.Boolean(required=True)
    supports_tools = fields.Boolean(required=True, metadata={"description": "Function definitions and tool calls"})
    supports_structured_output = fields.Boolean(required=True, metadata={
        "description": "Answers held to a JSON Schema (response_format)"})
    supports_logprobs = fields.Boolean(required=True)
    reasoning_model = fields.Boolean(required=True)
    ttft = fields.Float(required=True, metadata={"description": "Prior time to first token, seconds"})
    tokens_per_second = fields.Float(required=True)
    quality = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    served_by = fields.String(required=True, metadata={"description": "sandbox, or provider (the real API)"})
    base_url = fields.String(allow_none=True, metadata={"description": "Where requests go; null is the SDK default"})


class CapabilitiesSchema(ma.Schema):
    models = fields.List(fields.Nested(ModelCapabilitiesSchema), required=True)
    count = fields.Integer(required=True)
    unavailable = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "Catalog models nobody can serve here (no API key and the sandbox off), with why"})


class CatalogModel(fields.String):
    """The name of a model in the app's catalog (the spec lists them: `document_catalog_models`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if name in services().unavailable:
            raise ma.ValidationError(f"Model {name!r} is unavailable: {services().unavailable[name]}.")
        if name not in services().catalog:
            raise ma.ValidationError(f"Unknown model {name!r}; GET /models/capabilities lists the models.")
        return name


def document_catalog_models(api, catalog) -> None:
    """Give every CatalogModel field of the spec the enum of this app's model names."""
    names = sorted(model.model_name for model in catalog)

    def catalog_model_enum(converter, field, **kwargs) -> dict:
        return {"enum": names} if isinstance(field, CatalogModel) else {}

    api.ma_plugin.converter.add_attribute_function(catalog_model_enum)


PreferredModelsSchema = StrictSchema.from_dict(
    {level.value: fields.List(CatalogModel()) for level in Complexity}, name="PreferredModelsSchema"
)


def _fraction(description: str) -> fields.Field:
    return StrictFloat(validate=validate.Range(min=0, max=1), metadata={"description": description + ", 0 to 1"})


def _budget() -> fields.Field:
    return StrictFloat(
        validate=validate.Range(min=0, min_inclusive=False),
        metadata={"description": "USD per calendar month", "exclusiveMinimum": True},
    )


class PreferencesUpdateSchema(StrictSchema):
    cost_sensitivity = _fraction("How much cost weighs")
    speed_preference = _fraction("How much speed weighs")
    quality_preference = _fraction("How much quality weighs")
    monthly_budget = _budget()
    preferred_models = fields.Nested(
        PreferredModelsSchema,
        metadata={"description": "Models to prefer per complexity level; a level given replaces that level's "
                                 "list, an empty list clears it"},
    )


class PreferencesSchema(ma.Schema):
    cost_sensitivity = fields.Float(required=True)
    speed_preference = fields.Float(required=True)
    quality_preference = fields.Float(required=True)
    monthly_budget = fields.Float(required=True, metadata={"description": "USD per calendar month"})
    preferred_models = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class UserCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), _not_blank],
                         metadata={"pattern": r"\S"})
    monthly_budget = _budget()


class UserSchema(ma.Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    monthly_budget = fields.Float(required=True, metadata={"description": "USD per calendar month"})
    created_at = fields.Float(required=True, metadata={"description": "Unix time"})
    admin = fields.Boolean(required=True)


class ApiKeySchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "The key's id, to revoke it"})
    user_id = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "The key's first characters"})
    created_at = fields.Float(required=True, metadata={"description": "Unix time"})
    last_used_at = fields.Float(required=True, allow_none=True, metadata={"description": "Unix time"})
    revoked = fields.Boolean(required=True)


class IssuedKeySchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "The API key; shown this once only"})


class UserCreatedSchema(ma.Schema):
    user = fields.Nested(UserSchema, required=True)
    key = fields.Nested(IssuedKeySchema, required=True)
