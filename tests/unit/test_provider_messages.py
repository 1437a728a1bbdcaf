"""Conversations translate into each provider's shape without losing anything."""

from orchestrator.core.types import ChatRequest, Image, Message, ResponseFormat, Tool, ToolCall
from orchestrator.providers.anthropic_messages import ANSWER_TOOL
from orchestrator.providers.anthropic_messages import call_arguments as anthropic_arguments
from orchestrator.providers.base import alternating_turns, system_text
from orchestrator.providers.google_gemini import contents_of
from orchestrator.providers.openai_compatible import _ToolCallFragments, to_openai_messages

CONVERSATION = (
    Message("system", "Answer in French."),
    Message("user", "Hello"),
    Message("assistant", "Bonjour"),
    Message("user", "How are you?"),
    Message("user", "And the weather?"),
)


def request(**kwargs) -> ChatRequest:
    return ChatRequest(model="m", messages=CONVERSATION, system_prompt="You are kind.", **kwargs)


def test_openai_keeps_every_message_in_order():
    messages = to_openai_messages(request())
    assert messages[0] == {"role": "system", "content": "You are kind."}
    assert [m["content"] for m in messages[1:]] == [m.content for m in CONVERSATION]


def test_anthropic_gets_system_apart_and_alternating_turns():
    args = anthropic_arguments(request(max_tokens=10, temperature=1.5))
    assert args["system"] == "You are kind.\n\nAnswer in French."
    assert [m["role"] for m in args["messages"]] == ["user", "assistant", "user"]
    assert args["messages"][-1]["content"] == "How are you?\n\nAnd the weather?"
    assert args["max_tokens"] == 10 and "temperature" not in args


def test_gemini_contents_use_model_role():
    contents = contents_of(request())
    assert [c.role for c in contents] == ["user", "model", "user"]
    assert system_text(request()) == "You are kind.\n\nAnswer in French."


def test_a_conversation_starting_with_the_assistant_gets_a_user_turn_first():
    turns = alternating_turns((Message("assistant", "Hi, how can I help?"), Message("user", "Tell me a joke")))
    assert [t.role for t in turns] == ["user", "assistant", "user"]
    assert turns[1].text() == "Hi, how can I help?"


def test_reasoning_models_take_max_completion_tokens_and_no_temperature():
    from orchestrator.core.catalog import Catalog
    from orchestrator.providers.openai_compatible import call_arguments

    catalog = Catalog.load()
    reasoning = call_arguments(ChatRequest("o3-mini", CONVERSATION, temperature=0.3, max_tokens=200,
                                            options={"reasoning_effort": "low"}), catalog.get("o3-mini"))
    assert reasoning["max_completion_tokens"] == 200 and "max_tokens" not in reasoning
    assert "temperature" not in reasoning and reasoning["reasoning_effort"] == "low"
    plain = call_arguments(ChatRequest("gpt-4", CONVERSATION, temperature=0.3, max_tokens=200), catalog.get("gpt-4"))
    assert plain["max_tokens"] == 200 and plain["temperature"] == 0.3


TOOLED = (
    Message("user", "Weather in Paris?"),
    Message("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)),
    Message("tool", '{"temperature": 21}', tool_call_id="call_1"),
)
WEATHER = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}}, "The weather")


def test_anthropic_gets_tool_use_and_tool_result_blocks():
    args = anthropic_arguments(ChatRequest("m", TOOLED, tools=(WEATHER,), parallel_tool_calls=False))
    assistant, result = args["messages"][1]["content"], args["messages"][2]["content"]
    assert assistant == [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]
    assert result == [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"temperature": 21}'}]
    assert args["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_anthropic_gets_the_tools_a_history_called_even_when_none_is_offered():
    args = anthropic_arguments(ChatRequest("m", TOOLED))
    assert args["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert args["tool_choice"] == {"type": "none"}


def test_anthropic_is_made_to_answer_a_schema_through_the_answer_tool():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    args = anthropic_arguments(ChatRequest("m", CONVERSATION, response_format=ResponseFormat("json_schema", schema)))
    assert args["tools"][-1]["name"] == ANSWER_TOOL and args["tools"][-1]["input_schema"] == schema
    assert args["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
    with_tools = anthropic_arguments(ChatRequest("m", CONVERSATION, tools=(WEATHER,),
                                                 response_format=ResponseFormat("json_object")))
    assert [t["name"] for t in with_tools["tools"]] == ["get_weather", ANSWER_TOOL]
    assert with_tools["tool_choice"] == {"type": "any"}


def test_gemini_names_the_tool_a_result_answers_and_reads_images():
    image = Image("data:image/png;base64,iVBORw0KGgo=")
    contents = contents_of(ChatRequest("m", (*TOOLED, Message("user", "And this?", images=(image,)))))
    call, result = contents[1].parts[0].function_call, contents[2].parts[0].function_response
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    assert (result.name, result.id, result.response) == ("get_weather", "call_1", {"temperature": 21})
    inline = contents[2].parts[-1].inline_data
    assert inline.mime_type == "image/png" and inline.data.startswith(b"\x89PNG")


def test_openai_sends_tool_turns_and_images_as_they_came():
    image = Image("https://example.com/cat.jpg", "low")
    messages = to_openai_messages(ChatRequest("m", (*TOOLED, Message("user", "And this?", images=(image,)))))
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'}
    assert messages[3]["content"][1] == {"type": "image_url", "image_url": {"url": image.url, "detail": "low"}}


def test_streamed_openai_tool_call_fragments_are_gathered():
    fragments = _ToolCallFragments()
    fragments.add([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}])
    fragments.add([{"index": 0, "function": {"arguments": '{"a":'}}, {"index": 1, "id": "call_2",
                                                                       "function": {"name": "g", "arguments": "{}"}}])
    fragments.add([{"index": 0, "function": {"arguments": " 1}"}}])
    assert fragments.gathered() == (ToolCall("call_1", "f", '{"a": 1}'), ToolCall("call_2", "g", "{}"))
