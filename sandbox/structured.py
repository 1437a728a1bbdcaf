"""Structured answers: JSON (OpenAI's json_object and json_schema, Gemini's application/json)
and Gemini's text/x.enum, made from the schema by schema_values.

Without a schema, the JSON answer is `{"answer": <the plain answer>}`. Under the
invalid_output fault the answer does not validate: a schema's value is made invalid
(schema_values.invalid_value_for), and an answer without a schema is a JSON array, not an
object; an enum answer is a word outside the enum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sandbox.schema_values import invalid_value_for, value_for

JSON, ENUM = "json", "enum"
NOT_IN_ENUM = "unexpected"


@dataclass(frozen=True)
class OutputFormat:
    kind: str  # json or enum
    schema: dict | None = None  # JSON Schema (OpenAPI's subset for Gemini's responseSchema)


def structured_text(output: OutputFormat, plain_answer: str, salt: str, invalid: bool) -> str:
    if output.kind == ENUM:
        return NOT_IN_ENUM if invalid else str(value_for(output.schema or {}, salt))
    if output.schema is None:
        return json.dumps([plain_answer] if invalid else {"answer": plain_answer})
    value = invalid_value_for(output.schema, salt) if invalid else value_for(output.schema, salt)
    return json.dumps(value, ensure_ascii=False)
