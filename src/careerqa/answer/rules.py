"""The answer path's named rules: which may run, and which fired for an answer.

Each entry of ``RULES`` names one decision of the answer path that a plain "retrieve, prompt,
generate, keep the supported sentences" would not make, and says what it does. The answerer asks
``Rules.on(name)`` before it applies one (most are steps of ``answer/pipeline.py``) and records the
name when it changed the answer's course; the names fired go into ``Answer.rules`` (``ask --json``,
the API) and ``careerqa eval`` counts them (``rules_fired``). ``CAREERQA_RULES_OFF=name,name`` turns
rules off, for ablations on the pooled dev splits (``bench/ablate_rules.py``): a rule stays only
where turning it off costs something there. Unknown names are refused, so a typo cannot pass for an ablation.

Not handled here: the rules' own logic (``answer/pipeline.py``, ``answer/answerer.py``,
``answer/checking.py``, ``retrieve/hybrid.py``), the always-on checks (support, relay, markup) that
every answer passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from careerqa.errors import BadInput

RULES: dict[str, str] = {
    "faq_route": "a corpus FAQ entry close enough to the question is the answer, without the model",
    "refusal_retry": "the model refused although the passages hold the question's terms: ask again "
    "with the closest passage alone",
    "sentence_refusal": "a sentence saying the passages do not hold the answer is dropped; a draft of "
    "nothing else is a refusal",
    "reference_links": "a link in parentheses after a name is a reference: it is taken out of the "
    "sentence, which then stays unless it relays something else",
    "evidence_retry": "nothing supported beyond the question repeated: ask again with the closest passage",
    "quote_fallback": "a first draft refused (and its retry too) while a passage sentence is close to "
    "the question and the passages hold its terms: that sentence and the next, quoted and cited",
    "bridged": "retrieval: the passage between the top two of one section is ranked third",
}


@dataclass(frozen=True)
class Rules:
    """The rules that may run (all but those turned off)."""

    off: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> Rules:
        """``"a,b"`` (``Settings.rules_off``): those rules off; ``BadInput`` for a name not in ``RULES``."""
        names = frozenset(n.strip() for n in spec.split(",") if n.strip())
        unknown = sorted(names - RULES.keys())
        if unknown:
            raise BadInput(
                f"unknown rule(s) in CAREERQA_RULES_OFF: {', '.join(unknown)}; known: {', '.join(RULES)}"
            )
        return cls(names)

    def on(self, name: str) -> bool:
        if name not in RULES:
            raise KeyError(name)  # a rule asked for by a name it was not registered under: a bug
        return name not in self.off
