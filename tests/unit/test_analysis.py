import json

import pytest

from orchestrator.core.analysis import Complexity, TaskAnalysis, TaskType, analyze, estimate_tokens
from orchestrator.core.types import Message


def ask(text: str, system_prompt: str | None = None, max_tokens: int = 1024) -> TaskAnalysis:
    return analyze((Message("user", text),), system_prompt, max_tokens)


def chat(*turns: str, system_prompt: str | None = None) -> TaskAnalysis:
    roles = ("user", "assistant")
    messages = tuple(Message(roles[i % 2], text) for i, text in enumerate(turns))
    return analyze(messages, system_prompt, 1024)


@pytest.mark.parametrize(
    "prompt, level",
    [
        ("What is the weather like?", Complexity.SIMPLE),
        ("Explain the advantages of renewable energy", Complexity.MODERATE),
        ("Write a machine learning algorithm", Complexity.COMPLEX),
        ("Analyze quantum computing's impact on cryptography", Complexity.EXPERT),
    ],
)
def test_the_briefs_examples_land_on_their_level(prompt, level):
    assert ask(prompt).complexity == level


def test_the_level_is_a_banding_of_the_score():
    scores = [
        ask(prompt).complexity_score
        for prompt in (
            "What is the weather like?",
            "Explain the advantages of renewable energy",
            "Write a machine learning algorithm",
            "Analyze quantum computing's impact on cryptography",
        )
    ]
    assert scores == sorted(scores)
    assert all(0.0 <= score <= 1.0 for score in scores)


@pytest.mark.parametrize(
    "prompt, task_type",
    [
        ("Write a Python function for binary search", TaskType.CODE),
        ("Why does this JavaScript snippet throw a TypeError?\n```js\nconst a = null; a.b;\n```", TaskType.CODE),
        ("Solve the equation 3x + 5 = 20 for x", TaskType.MATH),
        ("What is the derivative of x^3 * sin(x)?", TaskType.MATH),
        ("Solve this riddle: what has keys but can't open locks?", TaskType.REASONING),
        ("Write a short poem about the sea", TaskType.CREATIVE_WRITING),
        ("Translate to Spanish: good morning, how are you?", TaskType.TRANSLATION),
        ("Summarize this article in three sentences: The city council met on Monday...", TaskType.SUMMARIZATION),
        ("Extract every person's name and email address from the text below as JSON.", TaskType.EXTRACTION),
        ("Who wrote Pride and Prejudice?", TaskType.QUESTION_ANSWERING),
        ("Hello, thanks for your help!", TaskType.CONVERSATION),
    ],
)
def test_clear_examples_get_their_task_type(prompt, task_type):
    assert ask(prompt).task_type == task_type


def test_a_follow_up_takes_the_task_of_the_conversation():
    follow_up = chat(
        "Write a Python function that reads a CSV file and sums its second column.",
        "```python\ndef total(path):\n    with open(path) as f:\n"
        "        return sum(float(row[1]) for row in csv.reader(f))\n```",
        "and now in Rust?",
    )
    assert follow_up.task_type == TaskType.CODE
    assert "code" in follow_up.needs
    assert follow_up.complexity in (Complexity.COMPLEX, Complexity.EXPERT)


def test_a_follow_up_without_a_task_of_its_own_inherits_one():
    follow_up = chat("Translate 'good morning, my friend' into German", "Guten Morgen, mein Freund", "and in French?")
    assert follow_up.task_type == TaskType.TRANSLATION


def test_earlier_turns_raise_a_short_follow_up_but_the_last_message_weighs_most():
    hard = "Derive the Lagrangian of a double pendulum and prove energy is conserved."
    alone = ask("Can you go on?")
    after_hard_turn = chat(hard, "...", "Can you go on?")
    hard_itself = ask(hard)
    assert alone.complexity_score < after_hard_turn.complexity_score < hard_itself.complexity_score


def test_the_system_prompt_weighs_in():
    coder = "You are a senior Python developer reviewing code."
    assert ask("Fix this.", system_prompt=coder).task_type == TaskType.CODE
    scholar = "You are a rigorous research assistant in epistemology and metaphysics."
    assert ask("Go on.", system_prompt=scholar).complexity_score > ask("Go on.").complexity_score


def test_needs_code_for_code():
    assert "code" in ask("Refactor this class:\n```python\nclass A:\n    def f(self): return 1\n```").needs
    assert "code" not in ask("Write a haiku about autumn").needs


def test_needs_long_context_for_a_very_long_conversation():
    document = "The committee reviewed the annual figures in detail. " * 8000  # about 100k tokens
    analysis = ask("Summarize this report:\n" + document)
    assert analysis.input_tokens > 100_000
    assert "long_context" in analysis.needs
    assert "long_context" not in ask("Summarize this paragraph: the committee met.").needs


@pytest.mark.parametrize(
    "content",
    [
        "What is in this picture? data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
        "Describe ![a chart](https://example.com/chart.png) for me",
    ],
)
def test_needs_vision_for_an_image_in_the_text(content):
    assert "vision" in ask(content).needs


def test_needs_vision_for_an_image_part():
    parts = [
        {"type": "text", "text": "What breed is this dog?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}},
    ]
    analysis = analyze((Message("user", parts),), None, 1024)
    assert "vision" in analysis.needs
    assert analysis.task_type == TaskType.QUESTION_ANSWERING


def test_plain_text_needs_no_vision():
    assert "vision" not in ask("Save the figure as plot.png and explain the axes").needs


def test_expected_output_tokens_follow_the_task_and_never_exceed_max_tokens():
    assert ask("hi").expected_output_tokens < ask("Write a Python web scraper with retries").expected_output_tokens
    essay = "Write a long essay on the history of Rome"
    for max_tokens in (0, 1, 50, 100_000):
        assert ask(essay, max_tokens=max_tokens).expected_output_tokens <= max_tokens


def test_input_tokens_count_the_whole_conversation_and_the_system_prompt():
    one = analyze((Message("user", "x" * 400),), None, 1024)
    assert one.input_tokens == estimate_tokens("x" * 400) + 4
    more = analyze((Message("user", "x" * 400), Message("assistant", "y" * 400)), "z" * 40, 1024)
    assert more.input_tokens == one.input_tokens + estimate_tokens("y" * 400) + 4 + estimate_tokens("z" * 40)


@pytest.mark.parametrize(
    "messages",
    [
        (),
        (Message("user", ""),),
        (Message("user", "   \n\t  "),),
        (Message("user", "\x00\x01\xff\ufffd\ud800 binary \x7f junk \U0001f600"),),
        (Message("user", "a" * 1_000_000),),
        (Message("user", "?" * 1_000_000),),
        (Message("user", "```" * 300_000),),
        (Message("assistant", "only an assistant turn"),),
        (Message("user", None),),
    ],
)
def test_empty_or_malformed_input_does_not_crash(messages):
    analysis = analyze(messages, None, 1024)
    assert 0.0 <= analysis.complexity_score <= 1.0
    assert analysis.input_tokens >= 0
    json.dumps(analysis.as_dict())


def test_a_one_megabyte_prompt_is_analysed_with_a_full_token_count():
    text = "Explain the following log and find the bug in the scheduler. " + "line of log output\n" * 55_000
    analysis = ask(text)
    assert analysis.input_tokens == estimate_tokens(text) + 4
    assert analysis.complexity in Complexity


def test_analysis_is_deterministic():
    prompt = "Compare the time complexity of quicksort and mergesort, and prove the lower bound."
    assert ask(prompt) == ask(prompt)
    assert ask(prompt).as_dict() == ask(prompt).as_dict()


def test_as_dict_is_json_ready():
    data = ask("Write a Python function for binary search").as_dict()
    assert json.loads(json.dumps(data)) == data
    fields = {"complexity", "complexity_score", "task_type", "input_tokens", "expected_output_tokens", "needs"}
    assert set(data) == fields
    assert data["task_type"] == "code" and data["complexity"] == "complex" and data["needs"] == ["code"]
