"""An answer is checked against the JSON Schema or the tools its request gave."""

from orchestrator.core.answer_checks import answer_problem
from orchestrator.core.types import ChatRequest, ChatResponse, Message, ResponseFormat, Tool, ToolCall, Usage

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
STRICT = Tool("count", SCHEMA, strict=True)
LOOSE = Tool("note", {"type": "object"})


def ask(**kwargs) -> ChatRequest:
    return ChatRequest("m", (Message("user", "Count"),), **kwargs)


def answer(content: str = "", finish_reason: str = "stop", calls: tuple[ToolCall, ...] = ()) -> ChatResponse:
    return ChatResponse(content, finish_reason, Usage(), "m", "p", None, 0.1, tool_calls=calls)


def test_json_answers_are_held_to_their_schema():
    form = ask(response_format=ResponseFormat("json_schema", SCHEMA))
    assert answer_problem(form, answer('{"n": 3}')) is None
    assert '"n" is a required property' in answer_problem(form, answer('{"m": 3}'))
    assert "not JSON" in answer_problem(form, answer("three"))
    assert answer_problem(form, answer('{"n": ', finish_reason="length")) is None  # cut: any model would be
    assert "is not of type" in answer_problem(ask(response_format=ResponseFormat("json_object")), answer("[1]"))


def test_tool_calls_must_name_an_offered_tool_with_arguments_a_strict_schema_allows():
    tooled = ask(tools=(STRICT, LOOSE))
    assert answer_problem(tooled, answer(calls=(ToolCall("c", "count", '{"n": 1}'),))) is None
    assert answer_problem(tooled, answer(calls=(ToolCall("c", "note", '{"anything": true}'),))) is None
    assert "not valid" in answer_problem(tooled, answer(calls=(ToolCall("c", "count", '{"n": "one"}'),)))
    assert "did not offer" in answer_problem(tooled, answer(calls=(ToolCall("c", "delete_all", "{}"),)))
    assert "not valid" in answer_problem(tooled, answer(calls=(ToolCall("c", "note", "[]"),)))
