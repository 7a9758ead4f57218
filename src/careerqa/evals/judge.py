"""Does a passage support a claim? The local LLM asked as a yes/no entailment judge.

No NLI model is shipped for this machine, so the eval asks the answering model itself, with greedy
decoding and a reply of a few tokens. ``JUDGE_PROMPT`` is the only judge prompt; its agreement with
hand-labelled pairs (``eval/judge_pairs.jsonl``) is measured by ``judge_agreement`` and reported with
every full eval, so a change to the prompt or the model shows up as a change in that number.
The passage comes before the claim so that llama.cpp reuses its KV cache when several claims are
checked against the same passage. Verdicts are cached per (passage, claim).
Not handled here: partial support (a claim is supported or it is not) and contradiction vs. neutral.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.errors import BadInput
from careerqa.evals.claimcheck import copied, copied_list, lexical_verdict
from careerqa.generate.base import Generator
from careerqa.text.citations import MARKER

JUDGE_PROMPT = """You check facts. You are given a passage and a claim. Decide whether the passage \
supports the claim.

Reply "yes" only if everything the claim states is said in the passage or follows directly from it.
Reply "no" if the claim adds a fact the passage does not state, swaps a name, number or term for \
another one, says the opposite of the passage, or is about something the passage does not discuss.
Reply with one word: yes or no."""

MAX_JUDGE_TOKENS = 3


def judge_messages(passage: str, claim: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": JUDGE_PROMPT},
        {
            "role": "user",
            "content": f"Passage:\n{passage.strip()}\n\nClaim: {claim.strip()}\n\n"
            "Does the passage support the claim? Answer yes or no.",
        },
    ]


def parse_verdict(reply: str) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when the reply is neither."""
    word = re.match(r"\W*(\w+)", reply.lower())
    if word is None:
        return None
    if word.group(1) in {"yes", "supported", "true"}:
        return True
    if word.group(1) in {"no", "not", "unsupported", "false"}:
        return False
    return None


class Judge:
    """Asks ``generator`` whether a passage supports a claim; an unparsable reply counts as no.

    A lexical second signal is asked first: a claim that copies a run of the passage word for word
    (``claimcheck.copied``) or a run of its list items (``claimcheck.copied_list``) is supported, and
    one that ``claimcheck.lexical_verdict`` rejects (numbers, names with their words in one place of
    the passage, a bracket's words without what it belongs to) is not; the model decides the rest.
    With ``lexical=False`` only the model decides (the judge before issue 14, for comparison).
    """

    def __init__(self, generator: Generator, lexical: bool = True) -> None:
        self.generator = generator
        self.lexical = lexical
        self._cache: dict[tuple[str, str], bool] = {}
        self.calls = 0
        self.unparsed = 0
        self.lexical_rejections = 0
        self.lexical_copies = 0

    def supports(self, passage: str, claim: str) -> bool:
        claim = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(MARKER.sub("", claim).split()))
        key = (passage, claim)
        if key not in self._cache and self.lexical:
            if copied(passage, claim) or copied_list(passage, claim):
                self.lexical_copies += 1
                self._cache[key] = True
            elif not lexical_verdict(passage, claim)[0]:
                self.lexical_rejections += 1
                self._cache[key] = False
        if key not in self._cache:
            reply = self.generator.generate(judge_messages(passage, claim), max_tokens=MAX_JUDGE_TOKENS)
            self.calls += 1
            verdict = parse_verdict(reply)
            if verdict is None:
                self.unparsed += 1
            self._cache[key] = bool(verdict)
        return self._cache[key]


@dataclass(frozen=True)
class JudgePair:
    id: str
    passage: str
    claim: str
    supported: bool


def load_judge_pairs(path: Path) -> list[JudgePair]:
    if not path.exists():
        raise BadInput(f"judge pairs {path} do not exist")
    pairs = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            pairs.append(
                JudgePair(str(raw["id"]), str(raw["passage"]), str(raw["claim"]), bool(raw["supported"]))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{path}:{line_no}: not a valid judge pair ({exc})") from exc
    if not pairs:
        raise BadInput(f"judge pairs {path} are empty")
    return pairs


def judge_agreement(judge: Judge, pairs: Sequence[JudgePair]) -> dict[str, Any]:
    """Accuracy of the judge on hand-labelled pairs, and its precision and recall of "supported"."""
    tp = fp = fn = tn = 0
    wrong = []
    for pair in pairs:
        said = judge.supports(pair.passage, pair.claim)
        tp += said and pair.supported
        fp += said and not pair.supported
        fn += not said and pair.supported
        tn += not said and not pair.supported
        if said != pair.supported:
            wrong.append(pair.id)
    return {
        "pairs": len(pairs),
        "accuracy": round((tp + tn) / len(pairs), 3) if pairs else None,
        "precision_supported": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall_supported": round(tp / (tp + fn), 3) if tp + fn else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "disagreements": wrong,
        "unparsed_replies": judge.unparsed,
        "lexical_rejections": judge.lexical_rejections,
        "lexical_copies": judge.lexical_copies,
        "hard_negatives_passed": fp,
    }
