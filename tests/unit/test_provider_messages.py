"""Conversations translate into each provider's shape without losing anything."""

from orchestrator.core.types import ChatRequest, Message
from orchestrator.providers.anthropic_messages import _call_arguments as anthropic_arguments
from orchestrator.providers.base import alternating_turns, system_text
from orchestrator.providers.google_gemini import _contents
from orchestrator.providers.openai_compatible import to_openai_messages

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
    contents = _contents(request())
    assert [c.role for c in contents] == ["user", "model", "user"]
    assert system_text(request()) == "You are kind.\n\nAnswer in French."


def test_a_conversation_starting_with_the_assistant_gets_a_user_turn_first():
    turns = alternating_turns((Message("assistant", "Hi, how can I help?"), Message("user", "Tell me a joke")))
    assert [t.role for t in turns] == ["user", "assistant", "user"]
    assert turns[1].text() == "Hi, how can I help?"


def test_reasoning_models_take_max_completion_tokens_and_no_temperature():
    from orchestrator.core.catalog import Catalog
    from orchestrator.providers.openai_compatible import _call_arguments

    catalog = Catalog.load()
    reasoning = _call_arguments(ChatRequest("o3-mini", CONVERSATION, temperature=0.3, max_tokens=200,
                                            options={"reasoning_effort": "low"}), catalog.get("o3-mini"))
    assert reasoning["max_completion_tokens"] == 200 and "max_tokens" not in reasoning
    assert "temperature" not in reasoning and reasoning["reasoning_effort"] == "low"
    plain = _call_arguments(ChatRequest("gpt-4", CONVERSATION, temperature=0.3, max_tokens=200), catalog.get("gpt-4"))
    assert plain["max_tokens"] == 200 and plain["temperature"] == 0.3
