"""The retry: when the model refused or its answer failed the checks, answer once more from the one
retrieved passage closest to the question (``relevance.best_passage``), without streaming, and keep
the new answer only when it passes the same checks (``answer/checking.py``).

Not handled here: when to retry (``answer/answerer.py``), the prompt (``generate/prompts.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from careerqa.answer.checking import evidence, shape, verify
from careerqa.answer.focus import Focus
from careerqa.answer.form import STOP, strip_markup
from careerqa.answer.relevance import best_passage
from careerqa.answer.run import Checked, Parts, is_refusal
from careerqa.generate.prompts import build_messages
from careerqa.text.citations import CitationStream
from careerqa.types import Hit


def retry(parts: Parts, question: str, focus: Focus, hits: Sequence[Hit], tried: set[str]) -> Checked | None:
    """Answer again from the one retrieved passage closest to the question (unless it is in
    ``tried``, a prompt that held it alone); None when the new answer is off target too."""
    retriever, settings = parts.retriever, parts.settings
    question_vector = retriever.embedder.embed_batch([retriever.prepare(question)])[0]
    vectors = [retriever.store.sentence_vectors(h.chunk) for h in hits]
    target = best_passage(question_vector, hits, vectors)
    if target is None or target.chunk.chunk_id in tried:
        return None
    messages, used = build_messages(question, [target], parts.generator.count_tokens, settings.context_tokens)
    if not used:
        return None
    raw = parts.generator.generate(messages, max_tokens=settings.max_answer_tokens, stop=STOP)
    stream = CitationStream(len(used))
    stream.feed(strip_markup(raw))
    stream.finish()
    draft = stream.text.strip()
    if is_refusal(draft):
        return None
    if focus.coverage < settings.focus_min_coverage and not focus.named_by(draft):
        return None  # the question's rare terms are in no passage and not in the answer either
    checked = verify(parts, draft, stream.order, used, (question,))
    if not evidence(parts, question, checked.kept):
        return None
    shaped = shape(parts, question, focus, checked.kept, checked.by_display)
    return replace(checked, kept=shaped) if shaped else None
