"""Checking a draft: ``verify`` keeps the sentences the passages support, each cited to the passage
that supports it, less those that relay what the question did not ask about (``answer/relay.py``,
whatever passage they cite) and those that say the passages do not hold the answer (counted: a draft
of nothing else is a refusal, ``pipeline.sentence_refused``); ``evidence`` asks whether they say more than
the question; ``shape`` keeps those on target, in the answer's form.

Not handled here: the scores behind these (support: ``answer/grounding.py``; relevance:
``answer/relevance.py``; focus: ``answer/focus.py``; form: ``answer/form.py``), the order of the checks and
what to do when one fails (``answer/pipeline.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from careerqa.answer.form import is_copy, select
from careerqa.answer.relay import Relay, record, relay, without_reference_links
from careerqa.answer.relevance import echoes, in_context, sentence_relevance
from careerqa.answer.run import Checked, Parts, Question
from careerqa.generate.prompts import is_abstention
from careerqa.text.citations import MARKER
from careerqa.text.lines import LIST_MARK
from careerqa.types import Hit

LIST_ITEMS = 6  # a copied list of this many short items at most is shown as its passage sentence
WHOLE_WORDS = 45  # ... when that sentence is no longer than this (``_whole``)


def verify(
    parts: Parts, draft: str, order: Sequence[int], used: Sequence[Hit], asked: Sequence[str]
) -> Checked:
    """Check every sentence of ``draft`` against the passages; the supported ones, each cited, less
    those that relay something no text of ``asked`` (the question, its rewrite) asks about."""
    # Markers in the draft are numbered by first mention; map them back to prompt passages, and
    # give the passages it did not cite the next numbers, so verification can move a misnumbered
    # citation to the passage that supports the sentence.
    by_display = {d + 1: used[n - 1] for d, n in enumerate(order)}
    for hit in used:
        if all(hit is not h for h in by_display.values()):
            by_display[len(by_display) + 1] = hit
    checks = parts.verifier.check(
        draft,
        {d: h.chunk.text for d, h in by_display.items()},
        {d: parts.retriever.store.sentence_vectors(h.chunk) for d, h in by_display.items()},
    )
    kept = []
    relayed: list[Relay] = []
    refusals = 0
    sources = {h.chunk.source for h in used}
    for check in checks:
        if parts.rules.on("reference_links") and (bare := without_reference_links(check.text)) != check.text:
            check = replace(check, text=bare)  # noqa: PLW2901 - the sentence as it will be shown
        if found := relay(check.text, asked):
            relayed.append(record(found))  # support is not safety: copied from its passage or not
            continue
        if parts.rules.on("sentence_refusal") and is_abstention(MARKER.sub("", check.text)):
            refusals += 1  # "… is not mentioned in the passages [1]": a refusal, never a cited claim
            continue
        if not check.supported or check.best is None:
            continue
        if _names_source(check.text, sources, by_display[check.best].chunk.text):
            continue  # "Read skills-required-for-ai-jobs.txt [1].": the prompt's markup, not an answer
        sentence = check.text
        if check.best not in check.cited:  # uncited or misnumbered: cite the supporting passage
            sentence = MARKER.sub("", sentence).rstrip()
            sentence = re.sub(r"([.!?]?)$", rf" [{check.best}]\1", sentence, count=1)
        kept.append(sentence)
    return Checked(by_display, checks, kept, tuple(relayed), refusals)


def evidence(question: Question, kept: Sequence[str]) -> bool:
    """Do the kept sentences say something beyond the question (``relevance.echoes``)?"""
    return any(not echoes(sentence, question.text, question.searched) for sentence in kept)


def shape(parts: Parts, question: Question, kept: list[str], by_display: dict[int, Hit]) -> list[str] | None:
    """The kept sentences that are about the question, at most ``max_answer_sentences`` and at most
    two verbatim copies; None when the answer as a whole is off target."""
    settings, embedder = parts.settings, parts.retriever.embedder
    # measured against the question as it was searched: "reinforcment lerning" is far from any answer
    searched, focus = question.searched, question.focus
    relevance = sentence_relevance(embedder, searched, kept, focus)
    contexts = [_copied_from(sentence, by_display) for sentence in kept]
    if any(contexts):  # a copied fragment means what the passage line it comes from says
        read = [c or s for c, s in zip(contexts, kept, strict=True)]
        in_place = sentence_relevance(embedder, searched, read, focus)
        relevance = [max(a, b) for a, b in zip(relevance, in_place, strict=True)]
    if max(relevance) < settings.min_answer_relevance:
        return None
    floor = settings.min_sentence_relevance
    on_topic = [i for i, r in enumerate(relevance) if r >= floor] or [relevance.index(max(relevance))]
    sentences = [kept[i] for i in on_topic]
    copied = [
        any(is_copy(sentence, by_display[n].chunk.text) for n in _numbers(sentence) if n in by_display)
        for sentence in sentences
    ]
    limit = settings.max_answer_sentences
    chosen = select(sentences, [relevance[i] for i in on_topic], copied, limit)
    return [_whole(sentences[i], contexts[on_topic[i]]) for i in chosen]


def _names_source(sentence: str, sources: set[str], passage: str) -> bool:
    """Does ``sentence`` name a passage's source file (a ``source=`` attribute of the prompt) that the
    passage text itself does not? Only a name with an extension or a folder counts: a file called
    "python" is a word."""
    low, text = sentence.lower(), passage.lower()
    names = [src.lower() for src in sources if "." in src or "/" in src]
    return any(name in low and name not in text for name in names)


def _whole(sentence: str, line: str | None) -> str:
    """A bare list copied from a passage ("MongoDB, Cassandra [1]") as the passage sentence it comes
    from (``line``, found by ``_copied_from``), cited: "Familiarity with NoSQL databases (like MongoDB,
    Cassandra) is also becoming increasingly valuable… [1]." says what the items are, to the reader
    and to a claim check, where the list alone asserts nothing. Only a list of two to ``LIST_ITEMS``
    short items (at most three words each: names, not clauses) from a passage sentence of at most
    ``WHOLE_WORDS`` words."""
    plain = MARKER.sub("", sentence).strip().rstrip(".!?;:")
    items = [i for i in re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", plain) if i.strip()]
    if not 2 <= len(items) <= LIST_ITEMS or any(len(i.split()) > 3 for i in items):
        return sentence
    if line is None or len(line.split()) > WHOLE_WORDS:
        return sentence
    markers = "".join(m.group(0) for m in MARKER.finditer(sentence))
    return f"{LIST_MARK.sub('', line).rstrip().rstrip('.!?;:')} {markers}."


def _copied_from(sentence: str, by_display: dict[int, Hit]) -> str | None:
    """The line of a cited passage that ``sentence`` copies a fragment of (``relevance.in_context``)."""
    for n in _numbers(sentence):
        if n in by_display and (line := in_context(sentence, by_display[n].chunk.text)):
            return line
    return None


def _numbers(sentence: str) -> list[int]:
    return [int(x) for m in MARKER.finditer(sentence) for x in re.findall(r"\d+", m.group(1))]
