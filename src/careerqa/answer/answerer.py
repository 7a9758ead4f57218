"""Question → retrieve → answer or abstain → prompt → generate → map ``[n]`` → verify, as one
stream of events (``events.py``): ``Answerer.events`` yields them, ``Answerer.ask`` is derived.

Abstention happens before generating, when the best passage is too far from the question
(``Settings.min_dense_score``), and after it, when the draft fails a step of the check pipeline
(``answer/pipeline.py``: the model's refusal in whatever words, nothing supported beyond the question,
off target) and the retry that step may ask for, the same pipeline on the closest passage, does no
better (``Answerer._settle``). The decisions beyond the plain path are the named rules of
``answer/rules.py``, each one kept by an ablation on the pooled dev splits.
Not handled here: the prompts and recognising a refusal (``generate/prompts.py``), a follow-up's
rewrite (``answer/turns.py``), the checks (``answer/pipeline.py``, ``answer/checking.py``), printing
(``cli/ask_cmd.py``), HTTP (``web/app.py``), retrieval itself (``retrieve/hybrid.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator as Gen
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np

from careerqa.answer.focus import Focus, FocusIndex
from careerqa.answer.form import STOP, MarkupFilter
from careerqa.answer.grounding import Verifier
from careerqa.answer.pipeline import NOTHING_SUPPORTED, Refusal, answer_again, check, quote
from careerqa.answer.rules import Rules
from careerqa.answer.run import Draft, Question, Run, elapsed_ms, is_refusal
from careerqa.answer.shortcuts import FaqMatcher, faq_answer, select_sentences
from careerqa.answer.turns import Turn, rewrite
from careerqa.config import Settings
from careerqa.errors import BadInput
from careerqa.events import Done, Events, Retrieved, Revised, Text, TextCallback, final_answer, same_text
from careerqa.generate.base import Generator
from careerqa.generate.prompts import SYSTEM_PROMPT, build_messages, opening_tag
from careerqa.retrieve.hybrid import Retriever
from careerqa.text.citations import MARKER, CitationStream
from careerqa.types import Answer, Citation, Hit

MAX_QUESTION_CHARS = 1000
MAX_IDLE_FEEDS = 8  # streamed pieces in a row without a word: the model loops on markers, stop it


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
    def rules(self) -> Rules:
        """The rules that may run, from ``settings.rules_off`` (read at each use, as the settings are)."""
        return Rules.parse(self.settings.rules_off)

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
        """The question to search: a follow-up made standalone by the model (``turns.rewrite``)."""
        return rewrite(self.generator, question, history)

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
        run = Run(question)
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

    def _answer(self, run: Run) -> Gen[Text, None, Answer]:
        """Abstain, answer from the FAQ, or generate and check; yields the text shown meanwhile."""
        weak = self._weak_retrieval(run.hits)
        if weak is not None:
            return run.abstained(weak)
        vector = self._question_vector(run.standalone)
        faq = self._faq_answer(run, vector) if self.rules.on("faq_route") else None
        if faq is not None:
            return faq
        messages, used, focus = self._prompt(run.standalone, run.hits, vector)
        searched = self.retriever.prepare(run.standalone)
        question = Question(run.asked, run.standalone, searched, focus, vector)
        draft = yield from self._generate(run, question, messages, used)
        if not is_refusal(draft.text) and (rest := run.release(draft.tail)):
            yield Text(rest)
        return self._settle(run, question, check(self, draft))

    def _weak_retrieval(self, hits: Sequence[Hit]) -> str | None:
        """Why to abstain before generating: the best passage is too far from the question. None: go on."""
        best = max((h.dense_score or 0.0 for h in hits), default=0.0)
        if best >= self.settings.min_dense_score:
            return None
        return f"retrieval: best passage similarity {best:.2f} < {self.settings.min_dense_score}"

    def _question_vector(self, question: str) -> np.ndarray | None:
        """The question's embedding, when the FAQ route, sentence selection or the excerpt needs it."""
        settings = self.settings
        if self.faq is None and settings.context_mode != "sentences" and settings.excerpt_tokens <= 0:
            return None
        vector: np.ndarray = self.retriever.embedder.embed_batch([question])[0]
        return vector

    def _faq_answer(self, run: Run, vector: np.ndarray | None) -> Answer | None:
        """The answer written in the corpus's own FAQ entry for this question (no generation), if one
        is close enough (``faq_min_score``) and something of it is left by the relay rule."""
        match = self.faq.best(vector) if self.faq is not None and vector is not None else None
        if match is None or match[1] < self.settings.faq_min_score:
            return None
        chunk, score = match
        hit = next((h for h in run.hits if h.chunk.chunk_id == chunk.chunk_id), None)
        run.timings["first_token"] = run.timings["generate"] = 0.0
        hit = hit or Hit(chunk=chunk, score=score, dense_score=score, rank=0)
        return self._entry_answer(run, hit, "faq_route")

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
        self, run: Run, question: Question, messages: list[dict[str, str]], used: Sequence[Hit]
    ) -> Gen[Text, None, Draft]:
        """Stream the model's answer: markup filtered out, markers renumbered by first mention, and
        the start held back while it could still become a refusal (``can_show``)."""
        stream = CitationStream(len(used))
        markup = MarkupFilter([opening_tag(n + 1, h) for n, h in enumerate(used)])
        started = time.perf_counter()
        first_token: float | None = None
        pieces = self.generator.stream(messages, max_tokens=self.settings.max_answer_tokens, stop=STOP)
        try:
            for piece in pieces:
                first_token = elapsed_ms(started) if first_token is None else first_token
                filtered = markup.feed(piece)
                if not filtered and re.search(r"[^\W\d_]", piece):
                    continue  # words held back by the markup filter: not a model looping on markers
                visible = stream.feed(filtered)
                if stream.idle >= MAX_IDLE_FEEDS:
                    break  # the model is repeating markers and punctuation: the answer is over
                if delta := run.show(visible):
                    run.timings.setdefault("first_text", elapsed_ms(started))
                    yield Text(delta)
        finally:
            _close(pieces)  # release the model now (also when the consumer stopped early)
        tail = stream.feed(markup.finish()) + stream.finish()
        run.timings["generate"] = elapsed_ms(started)
        run.timings["first_token"] = first_token if first_token is not None else run.timings["generate"]
        run.tokens.update(getattr(self.generator, "last_usage", None) or {})
        run.draft = stream.text.strip()
        return Draft(question, tuple(used), run.draft, tuple(stream.order), tail)

    def _settle(self, run: Run, question: Question, outcome: Draft | Refusal) -> Answer:
        """The checked draft as the answer. A refusal that names a retry rule (when on) asks the model
        once more from the closest passage, through the same checks; failing that, its fallback goes
        on, or the answer is an abstention with the reason."""
        run.fire_all(outcome.fired)
        if isinstance(outcome, Refusal) and outcome.retry and self.rules.on(outcome.retry):
            retried = run.timed("retry", answer_again, self, question, run.hits, outcome.tried)
            run.fire_all(retried.fired)  # what the retry's own steps applied
            if isinstance(retried, Draft):
                run.fire(outcome.retry)
                outcome = retried
        if isinstance(outcome, Refusal) and outcome.fallback is not None:
            outcome = check(self, outcome.fallback)
        if isinstance(outcome, Refusal) and self.rules.on("quote_fallback"):
            quoted = quote(self, question, run.hits)
            outcome = quoted if isinstance(quoted, Draft) else outcome
        run.fire_all(outcome.fired)
        if isinstance(outcome, Refusal):
            reason = outcome.reason
            if reason == NOTHING_SUPPORTED:  # a relayed sentence dropped says why (answer/relay.py)
                reason = run.relay_reason() or reason
            return run.abstained(reason, outcome.sentences_total)
        assert outcome.checked is not None  # a draft through the whole pipeline has been verified
        return run.answered(outcome.checked)

    def _entry_answer(self, run: Run, hit: Hit, rule: str) -> Answer | None:
        """``hit``'s FAQ answer, cited, as the answer (``shortcuts.faq_answer``): the fast path's,
        without its sentences that relay
        what the question did not ask about (``answer/relay.py``), None when none is left."""
        text = " ".join(run.screened([faq_answer(hit.chunk, sentences=self.settings.max_answer_sentences)]))
        if not text:
            return None
        run.fire(rule)  # before the answer is made: it lists the rules fired
        n = len(MARKER.findall(text))
        cited = (Citation(n=1, hit=hit),)
        return run.answer(text, cited, sentences_total=n, sentences_supported=n, route="faq")


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
