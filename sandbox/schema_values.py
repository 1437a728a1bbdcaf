"""Values made from a JSON Schema, deterministically: tool-call arguments and structured answers.

`value_for(schema, salt)` is a value valid against the schema, the same for the same schema
and salt. It reads type (a name or a list of names, upper-case OpenAPI names too), properties,
required, additionalProperties, enum, const, items, prefixItems, min/maxItems, uniqueItems,
anyOf/oneOf/allOf, local $ref/$defs (Pydantic's schemas), nullable, string formats (loosely),
min/maxLength, minimum/maximum and their exclusive forms, multipleOf. A `pattern` is not
followed. `invalid_value_for(schema, salt)` is a value that does not validate (a required
property left out, an unexpected one, or a value of the wrong type), still plain JSON; a
schema that accepts anything has no such value, and gets a valid one.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

from sandbox.answers import VOCABULARY

_MAX_DEPTH = 12  # a recursive schema ($ref to itself) stops nesting here
_FORMATS = {
    "date-time": "2024-05-17T09:30:00Z",
    "date": "2024-05-17",
    "time": "09:30:00Z",
    "duration": "P3D",
    "email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/resource",
    "url": "https://example.com/resource",
}
# One value of each JSON type, tried in order for a value of the wrong type.
_WRONG_VALUES: tuple[tuple[str, Any], ...] = (
    ("string", "unexpected"), ("integer", 12345), ("number", 1.5), ("boolean", True), ("null", None),
    ("array", ["unexpected"]), ("object", {"unexpected": True}),
)


def value_for(schema, salt: str) -> Any:
    return _Maker(schema, salt).value(schema, "", 0)


def invalid_value_for(schema, salt: str) -> Any:
    maker = _Maker(schema, salt)
    resolved = maker.resolve(schema)
    value = maker.value(resolved, "", 0)
    if isinstance(value, dict):
        required = [name for name in resolved.get("required", ()) if name in value]
        if required:
            del value[required[0]]
            return value
        if resolved.get("additionalProperties") is False:
            return {**value, "unexpected_property": True}
        for name, prop in resolved.get("properties", {}).items():
            wrong = maker.wrong_value(prop)
            if wrong is not _NO_VALUE:
                return {**value, name: wrong}
    wrong = maker.wrong_value(resolved)
    return value if wrong is _NO_VALUE else wrong


_NO_VALUE = object()


def _digest(salt: str, path: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}\x00{path}".encode(), digest_size=8).digest(), "big")


class _Maker:
    def __init__(self, root, salt: str):
        self._root = root if isinstance(root, dict) else {}
        self._salt = salt

    def resolve(self, schema) -> dict:
        """The schema with its $ref followed (siblings of $ref kept) and allOf merged."""
        if not isinstance(schema, dict):
            return {}
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            target = self._pointer(schema["$ref"])
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
            schema = merged
        return schema

    def _pointer(self, ref: str) -> dict:
        if not ref.startswith("#"):
            return {}  # a remote schema: anything goes
        node: Any = self._root
        for key in filter(None, ref[1:].split("/")):
            node = node.get(key.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}

    def _pick(self, path: str, count: int) -> int:
        return _digest(self._salt, path) % count

    def value(self, schema, path: str, depth: int) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][self._pick(path, len(schema["enum"]))]
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            return self.value(_non_null_option(options), path, depth)
        kind = _types(schema)[0]
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind in ("integer", "number"):
            return _number(schema, kind, _digest(self._salt, path))
        if kind == "boolean":
            return self._pick(path, 2) == 0
        if kind == "null":
            return None
        return self._string(schema, path)

    def _object(self, schema: dict, path: str, depth: int) -> dict:
        properties = schema.get("properties") or {}
        if depth >= _MAX_DEPTH:
            names = [name for name in schema.get("required", []) if name in properties]
        else:
            ordering = schema.get("propertyOrdering") or schema.get("property_ordering") or []
            names = [*ordering, *(name for name in properties if name not in ordering)]
        value = {name: self.value(properties[name], f"{path}/{name}", depth + 1) for name in names}
        extra = schema.get("additionalProperties")
        for index in range(len(value), schema.get("minProperties", 0)):
            value[f"key{index + 1}"] = self.value(extra if isinstance(extra, dict) else {}, f"{path}/+{index}",
                                                  depth + 1)
        return value

    def _array(self, schema: dict, path: str, depth: int) -> list:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        if isinstance(items, list):  # draft 4's tuple form
            prefix, items = items, schema.get("additionalItems")
        low = schema.get("minItems", 0)
        wanted = max(low, len(prefix), 1 if depth < _MAX_DEPTH else 0)
        count = min(wanted, schema.get("maxItems", wanted))
        if items is False:
            count = min(count, len(prefix))
        values: list = []
        for index in range(count):
            item_schema = prefix[index] if index < len(prefix) else items
            values.append(self._distinct_item(item_schema, f"{path}/{index}", depth, values, schema))
        return values

    def _distinct_item(self, item_schema, path: str, depth: int, earlier: list, array_schema: dict) -> Any:
        """An item; under uniqueItems, one not already in the array when another salt gives one."""
        value = self.value(item_schema, path, depth + 1)
        if array_schema.get("uniqueItems"):
            enum = self.resolve(item_schema).get("enum") or []
            fresh = [option for option in enum if option not in earlier]
            if enum and fresh:
                return fresh[0]
            for attempt in range(8):
                if value not in earlier:
                    break
                value = self.value(item_schema, f"{path}#{attempt}", depth + 1)
        return value

    def _string(self, schema: dict, path: str) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            text = str(uuid.UUID(int=_digest(self._salt, path) << 64 | _digest(self._salt, path + "~")))
        elif fmt in _FORMATS:
            text = _FORMATS[fmt]
        else:
            first, second = _digest(self._salt, path), _digest(self._salt, path + "~")
            text = f"{VOCABULARY[first % len(VOCABULARY)]} {VOCABULARY[second % len(VOCABULARY)]}"
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if len(text) < low:
            text += "x" * (low - len(text))
        return text[:high] if high is not None else text

    def wrong_value(self, schema) -> Any:
        """A value the schema refuses by its type, enum or const; _NO_VALUE when it has none."""
        schema = self.resolve(schema)
        if "const" in schema or schema.get("enum"):
            allowed = [schema["const"]] if "const" in schema else schema["enum"]
            return next((v for _, v in _WRONG_VALUES if v not in allowed), _NO_VALUE)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            allowed_types = {t for option in options for t in _declared_types(self.resolve(option))}
        else:
            allowed_types = set(_declared_types(schema))
        if not allowed_types:
            return _NO_VALUE
        if "number" in allowed_types:
            allowed_types.add("integer")
        return next((v for kind, v in _WRONG_VALUES if kind not in allowed_types), _NO_VALUE)


def _non_null_option(options: list) -> dict:
    """The first option that is not just null (a nullable field gets a value)."""
    return next((o for o in options if not (isinstance(o, dict) and _types(o) == ["null"])), options[0])


def _declared_types(schema: dict) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return [k.lower() for k in kind] if isinstance(kind, list) else [str(kind).lower()]


def _types(schema: dict) -> list[str]:
    """The schema's type names, lower-case, null last; inferred from its keywords when absent."""
    declared = _declared_types(schema)
    if declared:
        return sorted(declared, key=lambda k: k == "null")
    if "properties" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema:
        return ["array"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return ["number"]
    return ["string"]


def _number(schema: dict, kind: str, digest: int) -> int | float:
    """A number within the bounds: their middle when both are set, else a little past the one set."""
    step = 1 if kind == "integer" else 0.5
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - step
    if low is not None and high is not None:
        value = low + (high - low) / 2
    elif low is not None:
        value = low + digest % 10
    elif high is not None:
        value = high - digest % 10
    else:
        value = digest % 100
    multiple = schema.get("multipleOf")
    if multiple:
        value = math.ceil(value / multiple) * multiple if low is not None else math.floor(value / multiple) * multiple
    return int(math.ceil(value)) if kind == "integer" else float(value)
