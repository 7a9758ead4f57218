"""The support judge: prompt, verdict parsing, caching and agreement, with a scripted generator."""

from __future__ import annotations

import pytest

from careerqa.generation import FakeGenerator
from careerqa.judge import JUDGE_PROMPT, Judge, JudgePair, judge_agreement, load_judge_pairs, parse_verdict

from .conftest import REPO


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
    assert Judge(gen).supports("Docker packages apps.", "Docker packages apps [1].") is True
    system, user = gen.calls[0]
    assert system == {"role": "system", "content": JUDGE_PROMPT}
    assert user["content"].index("Docker packages apps.") < user["content"].index(
        "Claim: Docker packages apps."
    )
    assert "[1]" not in user["content"]


def test_judge_caches_verdicts_and_counts_unparsed_replies_as_no():
    gen = FakeGenerator(["no", "I think so"])
    judge = Judge(gen)
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
    result = judge_agreement(Judge(gen), pairs)
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
