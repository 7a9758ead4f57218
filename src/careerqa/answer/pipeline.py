"""The checks every draft passes, as one pipeline of steps over a frozen ``Draft``.

A step takes the answerer's ``Parts`` and a ``Draft`` and returns the draft (with what it found) or a
``Refusal`` with its reason; ``check`` runs ``STEPS`` in order and stops at the first refusal. The
first answer and the retry pass the same steps: a refusal may name the rule that answers again
(``Refusal.retry``, only for a first answer), and the answerer then asks the model once more from
other passages (``answer_again``, a draft with ``retry=True``) and runs the same pipeline on that
draft. A refusal that leaves a ``fallback`` (a bare yes or no, supported) goes on with it when the
retry does no better; a first draft still refused may be answered by a quote of the retrieved
sentence closest to the question (``quote``, rule ``quote_fallback``), which passes the same steps.
The named rules a step applied are in ``Draft.fired`` (``answer/rules.py``), counted by
``careerqa eval``.

Not handled here: what a step measures (support ``answer/grounding.py`` via ``checking.verify``,
relevance ``answer/relevance.py``, focus ``answer/focus.py``, form ``answer/form.py``), streaming the
first draft and making the answer (``answer/answerer.py``, ``answer/run.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from careerqa.answer.checking import evidence, shape, verify
from careerqa.answer.form import STOP, strip_markup
from careerqa.answer.relevance import closest_sentence
from careerqa.answer.run import Draft, Parts, Question, is_refusal
from careerqa.generate.prompts import build_messages
from careerqa.text.citations import MARKER, CitationStream
from careerqa.text.lines import looks_like_code
from careerqa.types import Hit

MODEL_REFUSED = "model: the passages do not answer the question"
NOTHING_SUPPORTED = "verification: no sentence is supported by the passage it cites"
OFF_TARGET = "relevance: the supported sentences do not address the question"
NO_OTHER_PASSAGE = "retry: no other passage to answer from"
NO_CLOSE_SENTENCE = "quote: no passage sentence is close enough to the question"


@dataclass(frozen=True)
class Refusal:
    """Why a draft is not an answer; ``retry``: the rule that may answer again from the passage
    closest to the question (not one in ``tried``, a prompt that held it alone); ``fallback``: the
    draft to go on with when that does no better."""

    reason: str
    retry: str | None = None
    tried: frozenset[str] = frozenset()
    fallback: Draft | None = None
    sentences_total: int = 0
    fired: tuple[str, ...] = ()


Step = Callable[[Parts, Draft], "Draft | Refusal"]


def model_refused(parts: Parts, draft: Draft) -> Draft | Refusal:
    """The draft starts by saying the passages do not answer (``run.is_refusal``)."""
    return _refused(parts, draft) if is_refusal(draft.text) else draft


def _refused(parts: Parts, draft: Draft) -> Refusal:
    """The model's refusal. A first answer is asked again (rule ``refusal_retry``) when the passages
    hold enough of the question's rare terms (``focus_rescue_coverage``)."""
    may = not draft.retry and draft.question.focus.coverage >= parts.settings.focus_rescue_coverage
    return Refusal(MODEL_REFUSED, retry="refusal_retry" if may else None)


def verified(parts: Parts, draft: Draft) -> Draft | Refusal:
    """Each sentence checked against the passages (``checking.verify``): supported ones kept and
    cited to their passage; relayed requests and refusal sentences (rule ``sentence_refusal``) dropped."""
    if draft.checked is not None:
        return draft
    checked = verify(parts, draft.text, draft.order, draft.passages, draft.question.asked)
    fired = ("sentence_refusal",) if checked.refusals and not draft.retry else ()
    return replace(draft, checked=checked, fired=draft.fired + fired)


def sentence_refused(parts: Parts, draft: Draft) -> Draft | Refusal:
    """Nothing is left but sentences saying the passages do not hold the answer: a refusal in other
    words, whatever it cites; handled as the model's refusal."""
    checked = draft.checked
    if checked is None or not checked.refusals or checked.kept:
        return draft
    return _refused(parts, draft)


def has_evidence(parts: Parts, draft: Draft) -> Draft | Refusal:
    """The kept sentences say something beyond the question (``checking.evidence``). Else a first
    answer is asked again with the closest passage (rule ``evidence_retry``); a bare yes or no the
    retry does not better is kept (``fallback``): it may well be right, and it cites its passage."""
    checked = draft.checked
    if checked is None or draft.bare_ok or evidence(draft.question, checked.kept):
        return draft
    reason = checked.relayed[0].reason if checked.relayed else NOTHING_SUPPORTED
    if draft.retry:
        return Refusal(reason, sentences_total=len(checked.checks))
    alone = frozenset({draft.passages[0].chunk.chunk_id}) if len(draft.passages) == 1 else frozenset()
    fallback = replace(draft, bare_ok=True) if checked.kept else None
    return Refusal(reason, "evidence_retry", alone, fallback, len(checked.checks))


def on_target(parts: Parts, draft: Draft) -> Draft | Refusal:
    """The kept sentences about the question, in the answer's form (``checking.shape``); a refusal
    when the answer as a whole is off target."""
    checked = draft.checked
    if checked is None:
        return draft
    shaped = shape(parts, draft.question, checked.kept, checked.by_display)
    if shaped is None:
        return Refusal(OFF_TARGET, sentences_total=len(checked.checks))
    return replace(draft, checked=replace(checked, kept=shaped))


STEPS: tuple[Step, ...] = (model_refused, verified, sentence_refused, has_evidence, on_target)


def check(parts: Parts, draft: Draft, steps: Sequence[Step] = STEPS) -> Draft | Refusal:
    """``draft`` through ``steps`` in order: the checked draft, or the first refusal (with the rules
    fired on the way)."""
    for step in steps:
        result = step(parts, draft)
        if isinstance(result, Refusal):
            return replace(result, fired=draft.fired + result.fired)
        draft = result
    return draft


def answer_again(
    parts: Parts, question: Question, hits: Sequence[Hit], tried: frozenset[str]
) -> Draft | Refusal:
    """A retry: the model asked once more, without streaming, from the one retrieved passage closest
    to the question (``relevance.closest_sentence``; not one in ``tried``), and that draft checked by the
    same pipeline."""
    retriever, settings = parts.retriever, parts.settings
    closest = closest_sentence(question.searched_vector(retriever.embedder), hits, retriever.store)
    if closest is None or (target := closest[1]).chunk.chunk_id in tried:
        return Refusal(NO_OTHER_PASSAGE)
    count = parts.generator.count_tokens
    messages, used = build_messages(question.text, [target], count, settings.context_tokens)
    if not used:
        return Refusal(NO_OTHER_PASSAGE)
    raw = parts.generator.generate(messages, max_tokens=settings.max_answer_tokens, stop=STOP)
    stream = CitationStream(len(used))
    stream.feed(strip_markup(raw))
    stream.finish()
    draft = Draft(question, tuple(used), stream.text.strip(), tuple(stream.order), retry=True)
    return check(parts, draft)


def quote(parts: Parts, question: Question, hits: Sequence[Hit]) -> Draft | Refusal:
    """The answer when the model gave none: the retrieved prose sentence closest to the question, and
    the prose sentences after it in its passage up to ``quote_sentences`` (a passage that names a
    problem often solves it in the next sentence; one ending in ":" introduces what a quote cannot
    show), quoted and cited, through the same checks. Only for a question whose terms the passages
    hold (``focus_rescue_coverage``) and a sentence whose cosine with it reaches
    ``quote_min_similarity``: a near-topic question nobody answered stays refused."""
    settings = parts.settings
    if question.focus.coverage < settings.focus_rescue_coverage:
        return Refusal(NO_CLOSE_SENTENCE)
    vector = question.searched_vector(parts.retriever.embedder)
    best = closest_sentence(vector, hits, parts.retriever.store, keep=_prose)
    if best is None or best[0] < settings.quote_min_similarity:
        return Refusal(NO_CLOSE_SENTENCE)
    _score, hit, i = best
    sentences = hit.chunk.sentences()
    quoted = [sentences[i]]
    for following in sentences[i + 1 : i + max(1, settings.quote_sentences)]:
        if quoted[-1].rstrip().endswith(":") or not _prose(following):
            break
        quoted.append(following)
    text = " ".join(re.sub(r"\s*([.!?:;]?)$", r" [1]\1", " ".join(q.split()), count=1) for q in quoted)
    text = re.sub(r"\[1\][:;]?$", "[1].", text)  # the answer ends as a sentence, not on what it introduced
    draft = Draft(question, (hit,), text, (1,), retry=True, fired=("quote_fallback",))
    return check(parts, draft)


def _prose(sentence: str) -> bool:
    """A sentence a quote may show: not a heading, not code, and no bracketed number a reader would
    take for a citation marker."""
    line = sentence.strip()
    return bool(line) and not line.startswith("#") and not looks_like_code(line) and not MARKER.search(line)
