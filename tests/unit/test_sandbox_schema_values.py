"""Values made from JSON Schemas: valid against the schema (checked with jsonschema_rs, formats
included), the same for the same salt, and made invalid on demand."""

from __future__ import annotations

import jsonschema_rs
import pytest
from pydantic import BaseModel, Field

from sandbox.schema_values import invalid_value_for, value_for


class Address(BaseModel):
    street: str
    postcode: str = Field(min_length=5, max_length=5)


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=120)
    email: str | None
    home: Address
    previous: list[Address] = Field(min_length=2)
    role: str = Field(json_schema_extra={"enum": ["admin", "user"]})


SCHEMAS = {
    "pydantic $defs, anyOf null, bounds": Person.model_json_schema(),
    "types list and nested arrays": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": ["string", "null"]}, "minItems": 3},
                       "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}},
        "required": ["tags"], "additionalProperties": False,
    },
    "formats": {
        "type": "object",
        "properties": {name: {"type": "string", "format": name}
                       for name in ("date-time", "date", "time", "email", "uri", "uuid", "ipv4", "ipv6", "hostname")},
    },
    "const, oneOf, allOf, exclusive bounds, multipleOf": {
        "type": "object",
        "properties": {
            "kind": {"const": "circle"},
            "radius": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
            "step": {"type": "integer", "minimum": 3, "multipleOf": 5},
            "shape": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {"sides": {"type": "integer"}}}]},
            "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
                               {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
        },
        "required": ["kind", "radius", "step", "shape", "both"],
    },
    "unique enum items": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 3, "uniqueItems": True},
    "recursive": {"$defs": {"node": {"type": "object", "properties": {"children": {"type": "array",
                  "items": {"$ref": "#/$defs/node"}}}, "required": ["children"]}}, "$ref": "#/$defs/node"},
    "a bare string": {"type": "string", "minLength": 30},
}


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_values_validate_against_their_schema_and_are_deterministic(schema):
    value = value_for(schema, "salt")
    jsonschema_rs.validate(schema, value, validate_formats=True)
    assert value_for(schema, "salt") == value


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_invalid_values_do_not_validate(schema):
    assert not jsonschema_rs.is_valid(schema, invalid_value_for(schema, "salt"))


def test_a_required_property_is_what_an_invalid_object_lacks():
    value = invalid_value_for(Person.model_json_schema(), "salt")
    assert "name" not in value and "age" in value


def test_openapi_schemas_with_upper_case_types_and_property_ordering():
    schema = {"type": "OBJECT", "properties": {"b": {"type": "INTEGER"}, "a": {"type": "STRING", "nullable": True}},
              "propertyOrdering": ["a", "b"], "required": ["a", "b"]}
    value = value_for(schema, "s")
    assert list(value) == ["a", "b"] and isinstance(value["a"], str) and isinstance(value["b"], int)


def test_salts_vary_the_values():
    schema = {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}}
    assert len({str(value_for(schema, f"salt {i}")) for i in range(10)}) > 1


def test_a_schema_that_accepts_anything_has_no_invalid_value():
    assert invalid_value_for({}, "salt") == value_for({}, "salt")
