"""The support judge: prompt, verdict parsing, caching and agreement, with a scripted generator."""

from __future__ import annotations

import pytest

from careerqa.evals.claimcheck import copied, lexical_verdict
from careerqa.evals.judge import (
    JUDGE_PROMPT,
    Judge,
    JudgePair,
    judge_agreement,
    load_judge_pairs,
    parse_verdict,
)

from .conftest import REPO
from .fakes import FakeGenerator


@pytest.mark.parametrize(
    "reply,verdict",
    [
        ("yes", True),
        ("Yes.", True),
        (" YES, it does", True),
        ("no", False),
        ("No.", False),
        ("Not supported", False),
        ("maybe", None),
        ("", None),
        ("...", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_judge_prompt_holds_passage_then_claim_without_markers():
    gen = FakeGenerator(["Yes"])
    assert Judge(gen, lexical=False).supports("Docker packages apps.", "Docker packages apps [1].") is True
    system, user = gen.calls[0]
    assert system == {"role": "system", "content": JUDGE_PROMPT}
    assert user["content"].index("Docker packages apps.") < user["content"].index(
        "Claim: Docker packages apps."
    )
    assert "[1]" not in user["content"]


def test_judge_caches_verdicts_and_counts_unparsed_replies_as_no():
    gen = FakeGenerator(["no", "I think so"])
    judge = Judge(gen, lexical=False)  # the model's path alone: "c" shares no word with "p"
    assert judge.supports("p", "c") is False
    assert judge.supports("p", "c [2]") is False  # same claim once markers are gone: cached
    assert judge.supports("p", "other") is False
    assert (judge.calls, judge.unparsed, len(gen.calls)) == (2, 1, 2)


def test_agreement_known_confusion():
    pairs = [
        JudgePair(str(i), f"p{i}", f"c{i}", label) for i, label in enumerate([True, True, False, False, True])
    ]
    replies = {"c0": "yes", "c1": "no", "c2": "yes", "c3": "no", "c4": "yes"}
    gen = FakeGenerator(lambda messages: replies[messages[-1]["content"].split("Claim: ")[1].split("\n")[0]])
    result = judge_agreement(Judge(gen, lexical=False), pairs)
    assert result["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert result["accuracy"] == 0.6
    assert result["precision_supported"] == pytest.approx(0.667, abs=1e-3)
    assert result["recall_supported"] == pytest.approx(0.667, abs=1e-3)
    assert result["disagreements"] == ["1", "2"]


def test_labelled_pairs_are_enough_and_balanced():
    pairs = load_judge_pairs(REPO / "eval" / "judge_pairs.jsonl")
    supported = sum(p.supported for p in pairs)
    assert len(pairs) >= 30 and 0.4 <= supported / len(pairs) <= 0.6
    assert len({p.id for p in pairs}) == len(pairs)


def test_lexical_signal_rejects_swaps_before_the_model_is_asked():
    passage = (
        "- NumPy: For numerical operations, especially with arrays and matrices.\n"
        "- Pandas: For data manipulation and analysis. Think of it as Excel on steroids.\n"
        "Most data scientists spend 80% of their time preparing data."
    )
    gen = FakeGenerator(lambda messages: "yes")
    judge = Judge(gen)
    assert judge.supports(passage, "NumPy is like Excel on steroids.") is False  # name from another line
    assert judge.supports(passage, "Data scientists spend 50% of their time preparing data.") is False
    assert len(gen.calls) == 0 and judge.lexical_rejections == 2
    assert judge.supports(passage, "Pandas is like Excel on steroids.") is True  # then the model decides
    assert judge.supports(passage, "Data scientists spend 80% of their time preparing data.") is True
    assert len(gen.calls) == 2


def test_table_cells_keep_their_column():
    passage = (
        "Feature | TensorFlow | PyTorch |\n---|---|---|\n"
        "Computational Graph | Static (defined before running) | Dynamic (defined on the fly) |"
    )
    judge = Judge(FakeGenerator(lambda messages: "yes"))
    assert judge.supports(passage, "PyTorch uses a dynamic computational graph.") is True
    swapped = "PyTorch uses a static computational graph defined before running."
    assert judge.supports(passage, swapped) is False
    # a claim that names a column is read in that column only
    assert judge.supports(passage, "TensorFlow has a dynamic computational graph, easier to debug.") is False


def test_new_pairs_from_real_failures_are_labelled():
    pairs = [p for p in load_judge_pairs(REPO / "eval" / "judge_pairs.jsonl") if int(p.id[1:]) >= 39]
    assert len(pairs) >= 20 and {p.supported for p in pairs} == {True, False}


def test_a_word_for_word_copy_is_supported_without_the_model():
    passage = (
        "Production Readiness | Very mature | Gaining ground, good production tools (TorchScript, ONNX) |\n"
        "Most data scientists spend 80% of their time preparing data. Python is not slow."
    )
    gen = FakeGenerator(lambda messages: "no")
    judge = Judge(gen)
    assert judge.supports(passage, "TorchScript, ONNX [1].") is True  # from bracket to bracket
    assert len(gen.calls) == 0 and judge.lexical_copies == 1
    # a run that does not start and end at punctuation may drop what changes its meaning
    assert copied(passage, "Python is slow.") is False  # the passage says "not slow"
    assert copied(passage, "data scientists spend 80% of their time preparing data.") is False  # "Most"
    assert copied(passage, "Python is not slow.") is True
    assert copied(passage, "Python?") is False and copied(passage, "Is Python not slow?") is False
    assert copied(passage, "ONNX.") is False  # one word states nothing: the model decides


def test_a_bracket_hung_on_the_wrong_item_is_rejected():
    passage = (
        "Key areas include linear algebra (for understanding neural networks), calculus (for optimization "
        "and backpropagation). A strong foundation in probability and statistics (for model evaluation, "
        "hypothesis testing. Understanding uncertainty)."
    )
    swapped = "Calculus is needed for model evaluation and hypothesis testing."
    assert lexical_verdict(passage, swapped)[0] is False
    assert lexical_verdict(passage, "Statistics is needed for model evaluation and hypothesis testing.")[0]
    assert lexical_verdict(passage, "Calculus is needed for optimization and backpropagation.")[0]
    # a single word of a bracket is no swap: "model" alone may come from anywhere
    assert lexical_verdict(passage, "Probability helps evaluate a model.")[0]


def test_a_run_of_list_items_under_its_parent_is_supported_without_the_model():
    from careerqa.evals.claimcheck import copied_list

    passage = (
        "Cloud and MLOps\n- Cloud Platforms\n- Compute Services: Virtual machines for training models.\n"
        "- MLOps (Machine Learning Operations)\n- Model Versioning\n- CI/CD for ML\n- Model Monitoring\n"
        "- Containerization and Orchestration\n- Docker\n- Kubernetes"
    )
    gen = FakeGenerator(lambda messages: "no")
    judge = Judge(gen)
    assert judge.supports(passage, "MLOps covers model versioning, CI/CD for ML, and model monitoring [1].")
    assert len(gen.calls) == 0 and judge.lexical_copies == 1
    assert copied_list(passage, "Docker, Kubernetes.")  # a bare run of items
    assert copied_list(passage, "Cloud Platforms, Compute Services")  # the name before an item's colon
    # another parent, items out of order or not adjacent, one item alone: the other checks decide
    assert not copied_list(passage, "Cloud Platforms covers model versioning, CI/CD for ML.")
    assert not copied_list(passage, "CI/CD for ML, Model Versioning.")
    assert not copied_list(passage, "Model Versioning, Model Monitoring.")
    assert not copied_list(passage, "MLOps covers model versioning.")


def test_a_headed_lines_sentences_are_about_its_title():
    passage = (
        "- Convolutional Neural Networks (CNNs)\n- Recurrent Neural Networks (RNNs)\n"
        "Convolutional Neural Networks (CNNs): Primarily used for image and video analysis. They excel "
        "at identifying patterns in visual data. They are the backbone of facial recognition, medical "
        "image analysis.\n"
        "Transformers: A more recent architecture that has revolutionized NLP. They leverage attention."
    )
    # the subject is the line's title, two sentences before the words the claim takes
    claim = "Convolutional Neural Networks (CNNs) are behind facial recognition and medical image analysis."
    assert lexical_verdict(passage, claim)[0]
    # another item's name on that line's words, or one title on the next line's words, stays a swap
    assert not lexical_verdict(passage, "Recurrent Neural Networks are the backbone of facial recognition.")[
        0
    ]
    assert not lexical_verdict(
        passage, "Convolutional Neural Networks have revolutionized NLP with attention."
    )[0]
