"""Cross-validation holds out what it says: the same question under another file's template,
or in two MMLU subjects, is never on both sides of a fold."""

from __future__ import annotations

import statistics

import pytest

from orchestrator.router_training.data import (
    ARENA,
    ARENA_FILE,
    BUNDLED_DIR,
    DEFAULT_DIR,
    MT_BENCH_FILE,
    Sample,
    _joined,
    load_mt_bench,
    load_training_file,
    near_duplicate,
    near_duplicates_of,
    question_key,
    shingles,
    training_files,
)
from orchestrator.router_training.training import folds

ARC = "Which gas do plants take in from the air to make food?"
ROUTERBENCH = (f"Which planet is largest?\nA) Mars\nB) Jupiter\nAnswer:\nB\n\n{ARC}\nA) oxygen\nB) carbon dioxide\n"
               'Print only a single choice  from "A" or "B" without explanation.\nAnswer:')
MIX7 = f"Question:{ARC}\nAnswer:"
MMLU = "Which of the following statements is true?\nA. 1 + 1 = 3\nB. 2 + 2 = 4\nAnswer:"
OTHER_MMLU = "Which of the following statements is true?\nA. Water boils at 50 C\nB. Ice is cold\nAnswer:"


def sample(text: str, source: str, group: str) -> Sample:
    return Sample((text,), source, 1.0, 0.0, group)


def test_one_question_has_one_key_whatever_the_template():
    assert question_key(ROUTERBENCH) == question_key(MIX7) == question_key(f"Question: {ARC}\nAnswer:")
    assert question_key(MMLU) != question_key(OTHER_MMLU)  # a generic stem is told apart by its choices


def test_groups_sharing_a_question_become_one_and_stay_in_one_fold():
    samples = [
        sample(ROUTERBENCH, "routerbench_arc_challenge", question_key(ROUTERBENCH)),
        sample(MIX7, "mix7_arc_challenge", question_key(MIX7) + " "),  # another group name, the same question
        sample(MMLU, "mmlu", "subject:logic"),
        sample(MMLU, "mmlu", "subject:math"),  # a question MMLU holds in two subjects
        sample(OTHER_MMLU, "mmlu", "subject:math"),
        *(sample(f"Question {i}?", "mix7_gsm8k", f"q{i}") for i in range(20)),
    ]
    joined = _joined(samples)
    assert joined[0].group == joined[1].group
    assert joined[2].group == joined[3].group == joined[4].group  # the two subjects, and all they hold
    fold = folds(joined)
    assert fold[0] == fold[1] and fold[2] == fold[3] == fold[4]


def test_near_duplicates_are_the_same_text_give_or_take_a_few_words_and_only_those():
    passage = ("Read the below passage carefully and answer the questions with an explanation: At a small company, "
               "parking spaces are reserved for the top executives: CEO, president, vice president, secretary, "
               "and treasurer with the spaces lined up in that order.")
    references = [passage, "Here is a Python function to find the length of the longest common subsequence of two "
                           "input strings. Can you identify any bug in this function?"]
    texts = [
        passage.upper().replace(":", " -"),  # word for word, once lower-cased and stripped of punctuation
        passage.rsplit(",", 2)[0],  # cut short
        "Please help me with my homework. " + passage,  # a preamble
        "Write a python function to find the length of the longest sublists.",  # the same opening words only
        "How do I bake bread?",
    ]
    assert near_duplicates_of(texts, references) == [[0], [0], [0], [], []]
    assert near_duplicate(shingles(passage), shingles(passage + " Who is the secretary?"))


def test_the_bundled_arena_file_has_the_reference_pair_its_own_groups_and_no_mt_bench_turn():
    samples = load_training_file(BUNDLED_DIR / ARENA_FILE)
    assert len(samples) == 292 and {s.source for s in samples} == {ARENA}
    assert all(s.group.startswith("arena:") for s in samples) and len({s.group for s in samples}) == 292
    assert all(0.1 <= s.strong <= 1 and 0.1 <= s.weak <= 1 for s in samples)  # a 1-10 grade / 10
    assert 0.2 < statistics.fmean(s.strong - s.weak for s in samples) < 0.3
    if not (DEFAULT_DIR / MT_BENCH_FILE).exists():
        pytest.skip("no MT-Bench file here")
    turns = [t for s in load_mt_bench() for t in s.turns]
    assert not any(near_duplicates_of([s.turns[0] for s in samples], turns))


def test_the_bundled_files_are_training_files_only_when_asked(tmp_path):
    (tmp_path / "train").mkdir()
    assert training_files(tmp_path, ()) == []
    assert training_files(tmp_path, (ARENA_FILE,)) == [BUNDLED_DIR / ARENA_FILE]
