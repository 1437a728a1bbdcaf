"""Cross-validation holds out what it says: the same question under another file's template,
or in two MMLU subjects, is never on both sides of a fold."""

from __future__ import annotations

from orchestrator.router_training.data import Sample, _joined, question_key
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
