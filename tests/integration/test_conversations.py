"""Context preservation: a conversation kept under a conversation_id continues on another
provider with its whole history (asserted on what each upstream received)."""

from __future__ import annotations

import requests

EXECUTE = "/api/v1/orchestrator/chat/execute"


def received(sandbox: str, model: str) -> list[tuple[str, str]]:
    (attempt,) = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": model}, timeout=5).json()["attempts"]
    return [(m["role"], m["content"]) for m in attempt["messages"]]


def test_a_conversation_moves_from_openai_to_anthropic_to_gemini(client, sandbox):
    requests.delete(f"{sandbox}/_sandbox/attempts", timeout=5).raise_for_status()
    turns = [
        ("gpt-4o-mini", "My name is Ada and I like graphs."),
        ("claude-3-5-haiku-20241022", "Which algorithm finds shortest paths?"),
        ("gemini-2.5-flash", "And what was my name?"),
    ]
    expected: list[tuple[str, str]] = []
    for model, message in turns:
        reply = client.post(EXECUTE, json={"message": message, "model": model, "conversation_id": "conv-ada",
                                           "system_prompt": "Be brief."})
        body = reply.get_json()
        assert reply.status_code == 200, body
        assert body["model_used"] == model and body["conversation_id"] == "conv-ada"
        expected.append(("user", message))
        assert received(sandbox, model) == expected
        expected.append(("assistant", body["response"]["content"]))


def test_history_in_the_request_reaches_the_model(client, sandbox):
    requests.delete(f"{sandbox}/_sandbox/attempts", timeout=5).raise_for_status()
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    reply = client.post(EXECUTE, json={"message": "Summarise our chat", "history": history,
                                       "model": "claude-3-5-haiku-20241022"})
    assert reply.status_code == 200, reply.get_json()
    assert received(sandbox, "claude-3-5-haiku-20241022") == [
        ("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Summarise our chat")]


def test_another_users_conversation_id_names_another_conversation(app, client, sandbox):
    client.post(EXECUTE, json={"message": "My secret is 42.", "model": "gpt-4o-mini", "conversation_id": "shared"})
    requests.delete(f"{sandbox}/_sandbox/attempts", timeout=5).raise_for_status()
    _, issued = app.extensions["orchestrator"].users.create("someone else")
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issued.key}"
    reply = other.post(EXECUTE, json={"message": "What is the secret?", "model": "gpt-4o-mini",
                                      "conversation_id": "shared"})
    assert reply.status_code == 200
    assert received(sandbox, "gpt-4o-mini") == [("user", "What is the secret?")]
