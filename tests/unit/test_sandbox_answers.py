from sandbox.answers import answer, count_tokens


def test_answers_are_deterministic_and_differ_by_prompt():
    assert answer("user: hello", 1000) == answer("user: hello", 1000)
    assert answer("user: hello", 1000)[0] != answer("user: goodbye", 1000)[0]


def test_max_tokens_cuts_the_answer_with_finish_reason_length():
    full, full_tokens, finish = answer("user: tell me everything", 10_000)
    assert finish == "stop" and 20 <= full_tokens <= 300
    cut, tokens, finish = answer("user: tell me everything", 3)
    assert tokens == 3 and finish == "length" and len(cut.split()) == 3


def test_token_count_is_about_four_characters_a_token():
    assert count_tokens("") == 0
    assert count_tokens("a" * 400) == 100
