"""Stream plans: chunking, pacing, and the stream faults, without a server."""

import json

import pytest

from sandbox.conversation import Conversation
from sandbox.faults import fault
from sandbox.latency import IMMEDIATE, Pacing
from sandbox.openai_wire import OpenAIWire
from sandbox.reply import reply_to
from sandbox.streaming import plan
from sandbox.wire import Call, Completion, Usage, text_chunks

WIRE = OpenAIWire()


def completion(max_tokens: int = 1000) -> Completion:
    call = Call("gpt-4o", Conversation.of([], [("user", "Tell me everything")]), max_tokens, stream=True)
    reply = reply_to(call.conversation, max_tokens)
    return Completion(call, (reply,), Usage(10, 0, reply.tokens, 0), "chatcmpl-1", 0)


def contents(steps) -> list:
    """The content of each data line: text, "[DONE]", "<finish:...>" or "<malformed>"."""
    out = []
    for step in steps:
        if step.frame is None:
            continue
        try:
            data = json.loads(step.frame.data) if step.frame.data != "[DONE]" else None
        except ValueError:
            out.append("<malformed>")
            continue
        if data is None:
            out.append("[DONE]")
        elif data["choices"][0]["finish_reason"]:
            out.append(f"<finish:{data['choices'][0]['finish_reason']}>")
        else:
            out.append(data["choices"][0]["delta"].get("content"))
    return out


def test_chunks_concatenate_to_the_text_and_break_where_asked():
    text = "One two three four five six seven."
    assert text_chunks(text) == [("One two three", 3), (" four five six", 3), (" seven.", 1)]
    assert [t for _, t in text_chunks(text, break_at=4)] == [3, 1, 2, 1]
    assert "".join(t for t, _ in text_chunks(" a b", break_at=1)) == " a b"
    assert text_chunks("") == []


def test_a_plain_stream_is_head_text_finish_and_done():
    c = completion()
    steps, cut = plan(WIRE, c, IMMEDIATE, None)
    out = contents(steps)
    assert not cut and out[0] == "" and out[-2:] == ["<finish:stop>", "[DONE]"]
    assert "".join(out[1:-2]) == c.reply.text


def test_pacing_puts_the_first_token_delay_first_and_spaces_chunks_by_their_tokens():
    steps, _ = plan(WIRE, completion(), Pacing(first_token=0.5, per_token=0.01), None)
    assert steps[0].delay == 0.5
    assert steps[1].delay == pytest.approx(0.03) and steps[1].tokens == 3
    assert sum(s.delay for s in steps) == pytest.approx(0.5 + 0.01 * completion().reply.tokens)


def test_stream_cut_stops_after_exactly_that_many_tokens_without_the_end():
    steps, cut = plan(WIRE, completion(), IMMEDIATE, fault("stream_cut", {"after_tokens": 4}))
    out = contents(steps)
    assert cut and sum(s.tokens for s in steps) == 4
    assert "[DONE]" not in out and not any(str(o).startswith("<finish") for o in out)


def test_stream_stall_pauses_after_that_many_tokens_then_goes_on():
    c = completion()
    steps, cut = plan(WIRE, c, IMMEDIATE, fault("stream_stall", {"after_tokens": 5, "seconds": 2}))
    stall = next(i for i, s in enumerate(steps) if s.frame is None)
    assert steps[stall].delay == 2 and sum(s.tokens for s in steps[:stall]) == 5
    assert not cut and "".join(o for o in contents(steps)[1:-2]) == c.reply.text


def test_malformed_chunk_inserts_one_bad_line_and_keeps_the_rest():
    c = completion()
    out = contents(plan(WIRE, c, IMMEDIATE, fault("malformed_chunk", {"after_tokens": 3}))[0])
    assert out.count("<malformed>") == 1 and out.index("<malformed>") == 2
    assert out[-1] == "[DONE]" and "".join(o for o in out[1:-2] if o != "<malformed>") == c.reply.text


def test_no_done_drops_only_the_final_event():
    out = contents(plan(WIRE, completion(), IMMEDIATE, fault("no_done", {}))[0])
    assert out[-1] == "<finish:stop>"


def test_faults_beyond_the_answer_happen_after_its_last_token():
    c = completion(max_tokens=5)
    steps, cut = plan(WIRE, c, IMMEDIATE, fault("stream_cut", {"after_tokens": 50}))
    assert cut and "".join(contents(steps)) == c.reply.text
