"""Whether an answer is what the request asked for: the JSON of its response_format, tool
calls to tools it offered, with the arguments a strict tool's schema allows.

An answer that is not fails its attempt, and the next model of the chain is asked: the
caller gets a conforming answer or an error, never JSON that breaks its schema.
"""

from __future__ import annotations

import json
from functools import lru_cache

import jsonschema_rs

from orchestrator.core.types import JSON_SCHEMA, ChatRequest, ChatResponse

ANY_OBJECT = {"type": "object"}


def answer_problem(request: ChatRequest, response: ChatResponse) -> str | None:
    """What is wrong with the answer, or None. An answer cut at max_tokens is not checked:
    any model would be cut there too."""
    if response.finish_reason == "length":
        return None
    if response.tool_calls:
        return _tool_calls_problem(request, response)
    form = request.response_format
    if form is None:
        return None
    problem = json_problem(response.content, form.schema if form.type == JSON_SCHEMA and form.schema else ANY_OBJECT)
    return f"the answer is not the JSON asked for: {problem}" if problem else None


def _tool_calls_problem(request: ChatRequest, response: ChatResponse) -> str | None:
    offered = {tool.name: tool for tool in request.tools}
    for call in response.tool_calls:
        tool = offered.get(call.name)
        if tool is None:
            return f"the model called {call.name!r}, a tool the request did not offer"
        problem = json_problem(call.arguments, tool.parameters if tool.strict else ANY_OBJECT)
        if problem:
            return f"the arguments of its call to {call.name!r} are not valid: {problem}"
    return None


def json_problem(text: str, schema: dict) -> str | None:
    """Why `text` is not JSON that matches `schema`, or None."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"not JSON ({exc})"
    error = next(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value), None)
    return None if error is None else f"{error.message} (at /{'/'.join(map(str, error.instance_path))})"


@lru_cache(maxsize=256)
def _validator(schema: str):
    """A compiled validator per schema: an agent sends the same schemas with every turn."""
    return jsonschema_rs.validator_for(json.loads(schema))


def schema_problem(schema: dict) -> str | None:
    """Why `schema` is not a JSON Schema a validator can compile, or None."""
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except ValueError as exc:  # jsonschema_rs.ValidationError among them
        return str(exc).splitlines()[0]
    return None
