"""Question → retrieve → answer or abstain → prompt → generate → map ``[n]`` → verify, as one
stream of events (``events.py``): ``Answerer.events`` yields them, ``Answerer.ask`` is derived.

Abstention happens in three places: before generating, when the best passage is too far from the
question (``Settings.min_dense_score``); after generating, when the model says the passages do not
hold the answer; and after verification, when no sentence of the answer is supported.
Not handled here: the prompts and recognising a refusal (``generate/prompts.py``), printing
(``cli/main.py``), HTTP
(``web/app.py``), retrieval itself (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as Gen
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np

from careerqa.answer.focus import Focus, FocusIndex
from careerqa.answer.form import STOP, MarkupFilter, is_copy, place_markers, plain_words, select, strip_markup
from careerqa.answer.grounding import SentenceSupport, Verifier
from careerqa.answer.relevance import best_passage, echoes, in_context, sentence_relevance
from careerqa.answer.shortcuts import FaqMatcher, faq_answer, select_sentences
from careerqa.config import Settings
from careerqa.errors import BadInput
from careerqa.events import Done, Events, Retrieved, Revised, Text, TextCallback, final_answer, same_text
from careerqa.generate.generation import Generator
from careerqa.generate.prompts import (
    ABSTAIN_TEXT,
    REWRITE_PROMPT,
    SYSTEM_PROMPT,
    build_messages,
    can_show,
    is_abstention,
    opening_tag,
)
from careerqa.ingest.chunking import LIST_MARK
from careerqa.retrieve.hybrid import Retriever
from careerqa.text.citations import MARKER, CitationStream, cite, renumber
from careerqa.text.sentences import split_sentences
from careerqa.text.tokens import stem, tokenize
from careerqa.types import Answer, Citation, Hit

MAX_QUESTION_CHARS = 1000
RESCUE_PASSAGES = 3  # the passages a low-cosine question's terms are looked for in
REWRITE_TURNS = 3  # the last turns of a conversation that a follow-up is rewritten with
REWRITE_MAX_TOKENS = 48  # a standalone question is one short line
HISTORY_ANSWER_WORDS = 60  # each earlier answer is cut to this many words for the rewrite
MAX_IDLE_FEEDS = 8  # streamed pieces in a row without a word: the model loops on markers, stop it
REFUSAL_CHECK_CHARS = 120  # a draft is a refusal when its start says so (``is_abstention``)

MODEL_REFUSED = "model: the passages do not answer the question"
LIST_ITEMS = 6  # a copied list of this many short items at most is shown as its passage sentence
WHOLE_WORDS = 45  # ... when that sentence is no longer than this (``_whole``)
NAME_WORDS = 4  # an answer this short is a bare name (``_answering_line``)
QUOTE_WORDS = 5  # ... and the line it is checked against says at least this much after its title
NOTHING_SUPPORTED = "verification: no sentence is supported by the passage it cites"
OFF_TARGET = "relevance: the supported sentences do not address the question"

# ``follows_up``: a question this short, opening with one of these words, or holding one of the cues
# may need the conversation to be understood, and is rewritten by the model.
FOLLOW_UP_WORDS = 4
FOLLOW_UP_OPENERS = frozenset("and but so or also then plus".split())
FOLLOW_UP_CUES = frozenset(
    """it its it's itself they them their theirs those these this that that's there he she him her
    one ones same such other others another else more example examples instead too also either
    neither both former latter above previous earlier part""".split()
)

Turn = tuple[str, str]  # (question, answer text)
T = TypeVar("T")


class Answerer:
    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        generator: Generator,
        verifier: Verifier,
        faq: FaqMatcher | None = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generator = generator
        self.verifier = verifier
        self.faq = faq
        self._focus_index: FocusIndex | None = None

    @property
    def focus_index(self) -> FocusIndex:
        """Document frequencies for the focus check, built on first use from this index's passages."""
        if self._focus_index is None:
            self._focus_index = FocusIndex(c.embedding_text() for c in self.retriever.store.chunks.values())
        return self._focus_index

    def warm_up(self) -> None:
        """Have the model read the constant system prompt now, so the first question does not wait
        for it (llama.cpp keeps it in its KV cache for the questions that follow)."""
        self.generator.prefill(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ""}]
        )

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """Turn a follow-up into a standalone question using the last turns of the conversation; a
        question that stands on its own (``follows_up``) is searched as it is, without the model."""
        if not history or not follows_up(question):
            return question
        convo = "\n".join(f"User: {q}\nAssistant: {_short(a)}" for q, a in history[-REWRITE_TURNS:])
        messages = [
            {"role": "system", "content": REWRITE_PROMPT},
            {"role": "user", "content": f"Conversation:\n{convo}\n\nLast message: {question}"},
        ]
        out = self.generator.generate(messages, max_tokens=REWRITE_MAX_TOKENS, stop=["\n"])
        out = out.strip().strip('"')
        if not out or len(out) > 4 * len(question) + 200:
            # An empty or runaway rewrite: retrieve with the last question as context instead.
            return f"{history[-1][0]} {question}"
        return out

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        on_text: TextCallback | None = None,
    ) -> Answer:
        """The final answer of ``events``; ``on_text``, if given, gets each ``Text`` piece."""
        return final_answer(self.events(question, history, top_k), on_text)

    def events(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Events:
        """Answer ``question``: ``Retrieved``, the ``Text`` the user may see as it is generated,
        ``Revised`` when checking changed what was shown, then ``Done``. ``BadInput`` is raised at the
        first step. Closing the iterator early closes the model's stream, which releases the model.

        The answer does not depend on who watches: text is shown once it can no longer become a
        refusal, and whatever checking does after that is reported as ``Revised``."""
        question, top_k = _checked_input(question, self.settings.top_k if top_k is None else top_k)
        run = _Run(question)
        run.standalone = run.timed("rewrite", self.rewrite, question, history)
        run.hits = tuple(run.timed("retrieve", self.retriever.search, run.standalone, top_k))
        yield Retrieved(run.hits, run.standalone)
        answer = yield from self._answer(run)
        if not run.shown:
            yield Text(answer.text)
        elif not same_text(run.shown, answer.text):
            yield Revised(answer.text)
        yield Done(answer)

    # --- the stages, in order ----------------------------------------------------------------------

    def _answer(self, run: _Run) -> Gen[Text, None, Answer]:
        """Abstain, answer from the FAQ, or generate and check; yields the text shown meanwhile."""
        weak = self._weak_retrieval(run.standalone, run.hits)
        if weak is not None:
            return run.abstained(weak)
        vector = self._question_vector(run.standalone)
        faq = self._faq_answer(run, vector)
        if faq is not None:
            return faq
        messages, used, focus = self._prompt(run.standalone, run.hits, vector)
        draft = yield from self._generate(run, messages, used)
        refused = is_abstention(draft.text[:REFUSAL_CHECK_CHARS])
        if not refused and (rest := run.release(draft.tail)):
            yield Text(rest)
        checked = self._refused(run, focus) if refused else self._verified(run, draft, used, focus)
        return checked if isinstance(checked, Answer) else run.answered(checked)

    def _weak_retrieval(self, question: str, hits: Sequence[Hit]) -> str | None:
        """Why to abstain before generating: the best passage is too far from the question and the top
        passages do not hold its terms either. None: go on."""
        best = max((h.dense_score or 0.0 for h in hits), default=0.0)
        if best >= self.settings.min_dense_score or self._terms_found(question, hits):
            return None
        return f"retrieval: best passage similarity {best:.2f} < {self.settings.min_dense_score}"

    def _terms_found(self, question: str, hits: Sequence[Hit]) -> bool:
        """Do the top passages hold most of the question's terms (``focus_rescue_coverage``)? A question
        whose words are there goes to the model even when the passages' cosine is low."""
        top = [h.chunk.embedding_text() for h in hits[:RESCUE_PASSAGES]]
        focus = self.focus_index.check(self.retriever.prepare(question), top)
        return bool(focus.terms) and focus.coverage >= self.settings.focus_rescue_coverage

    def _question_vector(self, question: str) -> np.ndarray | None:
        """The question's embedding, when the FAQ route, sentence selection or the excerpt needs it."""
        settings = self.settings
        if self.faq is None and settings.context_mode != "sentences" and settings.excerpt_tokens <= 0:
            return None
        vector: np.ndarray = self.retriever.embedder.embed_batch([question])[0]
        return vector

    def _faq_answer(self, run: _Run, vector: np.ndarray | None) -> Answer | None:
        """The answer written in the corpus's own FAQ entry for this question (no generation), if one
        is close enough (``faq_min_score``)."""
        match = self.faq.best(vector) if self.faq is not None and vector is not None else None
        if match is None or match[1] < self.settings.faq_min_score:
            return None
        chunk, score = match
        hit = next((h for h in run.hits if h.chunk.chunk_id == chunk.chunk_id), None)
        run.timings["first_token"] = run.timings["generate"] = 0.0
        return self._entry_answer(run, hit or Hit(chunk=chunk, score=score, dense_score=score, rank=0))

    def _prompt(
        self, question: str, hits: Sequence[Hit], vector: np.ndarray | None
    ) -> tuple[list[dict[str, str]], list[Hit], Focus]:
        """The messages, the passages they hold, and how well those passages cover the question."""
        texts = None
        budget = self.settings.context_tokens
        if self.settings.context_mode == "sentences" and vector is not None:
            budget = self.settings.sentence_tokens
            texts = select_sentences(vector, hits, self.retriever.store, self.generator.count_tokens, budget)
        excerpt = None
        if texts is None and vector is not None and self.settings.excerpt_tokens > 0:
            excerpt = partial(self._key_sentences, vector)
        messages, used = build_messages(question, hits, self.generator.count_tokens, budget, texts, excerpt)
        passages = [h.chunk.embedding_text() for h in used]
        return messages, used, self.focus_index.check(self.retriever.prepare(question), passages)

    def _key_sentences(self, vector: np.ndarray, hit: Hit) -> str | None:
        """The sentences of ``hit`` closest to the question, up to ``excerpt_tokens`` (at most 3)."""
        count = self.generator.count_tokens
        budget = self.settings.excerpt_tokens
        text = select_sentences(vector, [hit], self.retriever.store, count, budget).get(hit.chunk.chunk_id)
        # one sentence far over the budget (a long flattened list) would be read live: better none
        return text if text and count(text) <= 2 * budget else None

    def _generate(
        self, run: _Run, messages: list[dict[str, str]], used: Sequence[Hit]
    ) -> Gen[Text, None, _Draft]:
        """Stream the model's answer: markup filtered out, markers renumbered by first mention, and
        the start held back while it could still become a refusal (``can_show``)."""
        stream = CitationStream(len(used))
        markup = MarkupFilter([opening_tag(n + 1, h) for n, h in enumerate(used)])
        started = time.perf_counter()
        first_token: float | None = None
        pieces = self.generator.stream(messages, max_tokens=self.settings.max_answer_tokens, stop=STOP)
        try:
            for piece in pieces:
                first_token = _ms(started) if first_token is None else first_token
                filtered = markup.feed(piece)
                if not filtered and re.search(r"[^\W\d_]", piece):
                    continue  # words held back by the markup filter: not a model looping on markers
                visible = stream.feed(filtered)
                if stream.idle >= MAX_IDLE_FEEDS:
                    break  # the model is repeating markers and punctuation: the answer is over
                if delta := run.show(visible):
                    run.timings.setdefault("first_text", _ms(started))
                    yield Text(delta)
        finally:
            _close(pieces)  # release the model now (also when the consumer stopped early)
        tail = stream.feed(markup.finish()) + stream.finish()
        run.timings["generate"] = _ms(started)
        run.timings["first_token"] = first_token if first_token is not None else run.timings["generate"]
        run.tokens.update(getattr(self.generator, "last_usage", None) or {})
        run.draft = stream.text.strip()
        return _Draft(run.draft, stream.order, tail)

    def _refused(self, run: _Run, focus: Focus) -> _Checked | Answer:
        """The model said the passages do not answer: abstain, unless they hold the question's terms;
        then once more with the passage closest to the question."""
        if focus.coverage < self.settings.focus_rescue_coverage:
            return run.abstained(MODEL_REFUSED)
        retried = run.timed("retry", self._retry, run.standalone, focus, run.hits, set())
        return run.abstained(MODEL_REFUSED) if retried is None else retried

    def _verified(self, run: _Run, draft: _Draft, used: Sequence[Hit], focus: Focus) -> _Checked | Answer:
        """The draft's supported sentences, on target (focus, relevance and form: answer/focus.py,
        answer/relevance.py, answer/form.py); else once more with the closest passage, or an abstention."""
        checked = run.timed("verify", self._verify, draft.text, draft.order, used)
        total = len(checked.checks)
        alone = {used[0].chunk.chunk_id} if len(used) == 1 else set()
        if not self._evidence(run.standalone, checked.kept):
            # Nothing the passages support, or only the question repeated with a yes or no (which any
            # passage on the topic "supports"): once more with the closest passage. A bare yes or no
            # that the retry does not better is kept: it may well be right, and it cites its passage.
            retried = run.timed("retry", self._retry, run.standalone, focus, run.hits, alone)
            if retried is not None:
                return retried
            entry = self._cited_entry(run.standalone, checked, focus)
            if entry is not None:
                return self._entry_answer(run, entry)
            if not checked.kept:
                return run.abstained(NOTHING_SUPPORTED, total)
        if focus.coverage < self.settings.focus_min_coverage and not focus.named_by(draft.text):
            return run.abstained(f"focus: no passage mentions {', '.join(focus.missing[:3])}", total)
        shaped = self._shape(run.standalone, focus, checked.kept, checked.by_display)
        if shaped is not None:
            if len(shaped) == 1 and (
                line := self._answering_line(run.standalone, shaped[0], checked.by_display)
            ):
                shaped = [line]
            return replace(checked, kept=shaped)
        # Off target: once more with the passage closest to the question (the same passage alone is
        # a new prompt when the first one held several).
        retried = run.timed("retry", self._retry, run.standalone, focus, run.hits, alone)
        return run.abstained(OFF_TARGET, total) if retried is None else retried

    def _verify(self, draft: str, order: Sequence[int], used: Sequence[Hit]) -> _Checked:
        """Check every sentence of ``draft`` against the passages; the supported ones, each cited."""
        # Markers in the draft are numbered by first mention; map them back to prompt passages, and
        # give the passages it did not cite the next numbers, so verification can move a misnumbered
        # citation to the passage that supports the sentence.
        by_display = {d + 1: used[n - 1] for d, n in enumerate(order)}
        for hit in used:
            if all(hit is not h for h in by_display.values()):
                by_display[len(by_display) + 1] = hit
        checks = self.verifier.check(
            draft,
            {d: h.chunk.text for d, h in by_display.items()},
            {d: self.retriever.store.sentence_vectors(h.chunk) for d, h in by_display.items()},
        )
        kept = []
        sources = {h.chunk.source for h in used}
        for check in checks:
            if not check.supported or check.best is None:
                continue
            if _names_source(check.text, sources, by_display[check.best].chunk.text):
                continue  # "Read skills-required-for-ai-jobs.txt [1].": the prompt's markup, not an answer
            sentence = check.text
            if check.best not in check.cited:  # uncited or misnumbered: cite the supporting passage
                sentence = MARKER.sub("", sentence).rstrip()
                sentence = re.sub(r"([.!?]?)$", rf" [{check.best}]\1", sentence, count=1)
            kept.append(sentence)
        return _Checked(by_display, checks, kept)

    def _answering_line(self, question: str, sentence: str, by_display: dict[int, Hit]) -> str | None:
        """For a bare name ("NumPy [1]" for "which python library is like excel on steroids?"): the
        headed passage line holding the passage sentence that names most of the question's rare terms
        (``focus``; then the closest by cosine), when that line does not name it ("- Pandas: For data
        manipulation and analysis. Think of it as Excel on steroids, …"), each sentence cited to its
        passage by the display number it has in the answer. The model took the name of the item next
        to the one the question describes; the line says which it is. None: the name stands (its
        line names it, or the answer is more than a name)."""
        plain = MARKER.sub("", sentence).strip().rstrip(".!?")
        numbers = _numbers(sentence)
        if len(plain.split()) > NAME_WORDS or len(numbers) != 1 or numbers[0] not in by_display:
            return None
        searched = self.retriever.prepare(question)
        index = self.focus_index
        weights = {stem(t): index.idf(stem(t)) for t in index.check(searched, []).terms}
        vector = self.retriever.embedder.embed_batch([searched])[0]
        best: tuple[float, float, int, str] | None = None
        for n, hit in by_display.items():
            vectors = self.retriever.store.sentence_vectors(hit.chunk)
            for unit, cosine in zip(hit.chunk.sentences(), vectors @ vector, strict=True):
                held = set(tokenize(unit))
                key = (sum(w for t, w in weights.items() if t in held), float(cosine))
                if best is None or key > best[:2]:
                    best = (*key, n, unit)
        if best is None:
            return None
        _, _, n, unit = best
        hit = by_display[n]
        line = next((ln for ln in hit.chunk.text.splitlines() if unit.strip() in ln), "")
        title, _, body = LIST_MARK.sub("", line).partition(":")
        if not body or len(title.split()) > NAME_WORDS + 2 or len(body.split()) < QUOTE_WORDS:
            return None  # not a line headed by a short title: "Key services include:" names nothing
        if len(line.split()) > WHOLE_WORDS or plain_words(plain) in plain_words(line):
            return None
        parts = split_sentences(LIST_MARK.sub("", line).strip())
        if len(parts) > self.settings.max_answer_sentences:
            return None
        return " ".join(cite(part, n) for part in parts)  # each sentence cited, as verification reads them

    def _cited_entry(self, question: str, checked: _Checked, focus: Focus) -> Hit | None:
        """The corpus FAQ entry a bare yes or no cites ("No [1]." for "is AI work only about coding?",
        citing "Is it all about coding, or are other skills essential too?"), when every sentence of
        the draft only repeats the question and the passages hold its focus: the entry's own answer
        says what the bare word stood for. None otherwise."""
        if focus.coverage < self.settings.focus_min_coverage or not checked.checks:
            return None
        searched = self.retriever.prepare(question)
        if not all(echoes(check.text, question, searched) for check in checked.checks):
            return None
        cited = [n for check in checked.checks for n in check.cited if n in checked.by_display]
        entries = [checked.by_display[n] for n in dict.fromkeys(cited)]
        entries = [h for h in entries if h.chunk.kind == "faq" and h.chunk.section.strip()]
        return entries[0] if len(entries) == 1 else None

    def _entry_answer(self, run: _Run, hit: Hit) -> Answer:
        """``hit``'s FAQ answer, cited, as the answer (``shortcuts.faq_answer``): the fast path's, and
        the one a bare yes or no stood for (``_cited_entry``)."""
        text = faq_answer(hit.chunk, sentences=self.settings.max_answer_sentences)
        n = len(MARKER.findall(text))
        cited = (Citation(n=1, hit=hit),)
        return run.answer(text, cited, sentences_total=n, sentences_supported=n, route="faq")

    def _evidence(self, question: str, kept: Sequence[str]) -> bool:
        """Do the kept sentences say something beyond the question (``relevance.echoes``)?"""
        searched = self.retriever.prepare(question)
        return any(not echoes(sentence, question, searched) for sentence in kept)

    def _shape(
        self, question: str, focus: Focus, kept: list[str], by_display: dict[int, Hit]
    ) -> list[str] | None:
        """The kept sentences that are about the question, at most ``max_answer_sentences`` and at most
        two verbatim copies; None when the answer as a whole is off target."""
        # measured against the question as it was searched: "reinforcment lerning" is far from any answer
        searched = self.retriever.prepare(question)
        relevance = sentence_relevance(self.retriever.embedder, searched, kept, focus)
        contexts = [_copied_from(sentence, by_display) for sentence in kept]
        if any(contexts):  # a copied fragment means what the passage line it comes from says
            read = [c or s for c, s in zip(contexts, kept, strict=True)]
            in_place = sentence_relevance(self.retriever.embedder, searched, read, focus)
            relevance = [max(a, b) for a, b in zip(relevance, in_place, strict=True)]
        if max(relevance) < self.settings.min_answer_relevance:
            return None
        floor = self.settings.min_sentence_relevance
        on_topic = [i for i, r in enumerate(relevance) if r >= floor] or [relevance.index(max(relevance))]
        sentences = [kept[i] for i in on_topic]
        copied = [
            any(is_copy(sentence, by_display[n].chunk.text) for n in _numbers(sentence) if n in by_display)
            for sentence in sentences
        ]
        limit = self.settings.max_answer_sentences
        chosen = select(sentences, [relevance[i] for i in on_topic], copied, limit)
        return [_whole(sentences[i], contexts[on_topic[i]]) for i in chosen]

    def _retry(self, question: str, focus: Focus, hits: Sequence[Hit], tried: set[str]) -> _Checked | None:
        """Answer again from the one retrieved passage closest to the question (unless it is in
        ``tried``, a prompt that held it alone); None when the new answer is off target too."""
        question_vector = self.retriever.embedder.embed_batch([self.retriever.prepare(question)])[0]
        vectors = [self.retriever.store.sentence_vectors(h.chunk) for h in hits]
        target = best_passage(question_vector, hits, vectors)
        if target is None or target.chunk.chunk_id in tried:
            return None
        messages, used = build_messages(
            question, [target], self.generator.count_tokens, self.settings.context_tokens
        )
        if not used:
            return None
        raw = self.generator.generate(messages, max_tokens=self.settings.max_answer_tokens, stop=STOP)
        stream = CitationStream(len(used))
        stream.feed(strip_markup(raw))
        stream.finish()
        draft = stream.text.strip()
        if is_abstention(draft[:REFUSAL_CHECK_CHARS]):
            return None
        if focus.coverage < self.settings.focus_min_coverage and not focus.named_by(draft):
            return None  # the question's rare terms are in no passage and not in the answer either
        checked = self._verify(draft, stream.order, used)
        if not self._evidence(question, checked.kept):
            return None
        shaped = self._shape(question, focus, checked.kept, checked.by_display)
        return replace(checked, kept=shaped) if shaped else None


def follows_up(question: str) -> bool:
    """Might ``question`` lean on the conversation before it? Short questions ("and tensorflow?"),
    those that open like a continuation ("and", "so", "what about") and those with a word that points
    back ("it", "they", "that", "the pandas one", "an example") do; "What does a data engineer do?"
    does not, and skips the model's rewrite (about a second on 2 cores). A question wrongly taken for
    standalone loses its context, so the cues are broad: a needless rewrite only costs time."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", question.lower())
    if len(words) <= FOLLOW_UP_WORDS or words[0] in FOLLOW_UP_OPENERS:
        return True
    return any(w in FOLLOW_UP_CUES for w in words) or bool(
        re.search(r"\b(?:what|how) about\b", question, re.I)
    )


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


@dataclass(frozen=True)
class _Draft:
    """The model's answer as streamed: its text (markers numbered by first mention), the prompt
    passage of each number, and the end that was not shown yet."""

    text: str
    order: list[int]
    tail: str


@dataclass(frozen=True)
class _Checked:
    """Verified sentences: the passage behind each display number, every sentence's check, and the
    sentences kept (supported, and after shaping, on target)."""

    by_display: dict[int, Hit]
    checks: list[SentenceSupport]
    kept: list[str]


@dataclass
class _Run:
    """One question on its way through the stages: what they found, what the user was shown, the clock."""

    question: str
    standalone: str = ""
    hits: tuple[Hit, ...] = ()
    draft: str | None = None  # the model's text before verification
    tokens: dict[str, int] = field(default_factory=dict)  # the model's prompt and completion counts
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    shown: str = ""  # the text yielded so far
    held: str = ""  # text held back while it could still become a refusal

    def timed(self, name: str, stage: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        result = stage(*args)
        self.timings[name] = _ms(started)
        return result

    def show(self, text: str) -> str:
        """What of ``text`` the user may see now: the start of an answer is held back until it can no
        longer become a refusal (``can_show``); after that, everything."""
        if self.shown:
            self.shown += text
            return text
        self.held += text
        if not can_show(self.held):
            return ""
        self.shown, self.held = self.held, ""
        return self.shown

    def release(self, tail: str) -> str:
        """The held text and ``tail``, shown when the whole draft is not a refusal."""
        rest, self.held = self.held + tail, ""
        self.shown += rest
        return rest

    def answer(self, text: str, citations: tuple[Citation, ...], **fields: Any) -> Answer:
        """The one place an ``Answer`` is made: what the run found, and the total time."""
        self.timings["total"] = _ms(self.started)
        return Answer(
            question=self.question,
            text=text,
            abstained=fields.pop("abstained", False),
            citations=citations,
            retrieved=self.hits,
            timings_ms=self.timings,
            standalone_question=self.standalone if self.standalone != self.question else None,
            draft=self.draft,
            tokens=self.tokens,
            **fields,
        )

    def abstained(self, reason: str, sentences_total: int = 0) -> Answer:
        return self.answer(
            ABSTAIN_TEXT, (), abstained=True, abstain_reason=reason, sentences_total=sentences_total
        )

    def answered(self, checked: _Checked) -> Answer:
        """The checked sentences as the answer, citations renumbered 1.. by first mention."""
        text, order = renumber(" ".join(checked.kept), checked.by_display)
        citations = tuple(Citation(n=i + 1, hit=checked.by_display[old]) for i, old in enumerate(order))
        return self.answer(
            place_markers(text),
            citations,
            sentences_total=len(checked.checks),
            sentences_supported=len(checked.kept),
        )


def _checked_input(question: str, top_k: int) -> tuple[str, int]:
    """The question with its whitespace collapsed, and ``top_k``; ``BadInput`` when either is unusable."""
    question = " ".join(question.split())
    if not question:
        raise BadInput("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise BadInput(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    if top_k < 1:
        raise BadInput(f"top-k must be at least 1, not {top_k}")
    return question, top_k


def _close(pieces: Iterator[str]) -> None:
    close = getattr(pieces, "close", None)
    if close is not None:
        close()


def _numbers(sentence: str) -> list[int]:
    return [int(x) for m in MARKER.finditer(sentence) for x in re.findall(r"\d+", m.group(1))]


def _short(text: str, words: int = HISTORY_ANSWER_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
