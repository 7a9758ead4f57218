"""Hybrid retrieval: a dense ranking and a BM25 ranking fused by reciprocal rank.

Candidates are the union of the best chunks by chunk vector, by best sentence and by BM25, as the
store's candidate search gives them (``index/store.py``: FAISS and Qdrant alike). The dense
ranking orders them by a blend of cosines (``dense_relevance``): the chunk vector's, the best single
sentence's and the best runs of 3 and 4 consecutive sentences (a run is scored by the cosine of the
sum of its stored sentence vectors, so no text is embedded at query time). A chunk often holds several
topics (a list flattened into one passage): a run of sentences matches a question about one of them
better than the whole chunk does, and better than one sentence cut from its context (a list item
"- Regression: MSE, RMSE" under "Model Evaluation").

When the two best passages are of one section with one passage between them, that passage is ranked
third (``next_in_section``): it is on their topic even where it does not name it. On the 102 answerable
eval questions this moves 2 ("wat is dokker used for": rank 10 to 3) and none for the worse.

The store's candidate search (on FAISS, its BM25 postings) is made once, when a ``Retriever`` is made
from a loaded index, never per query. The chunk cosine is kept on each ``Hit`` because the fused score
is rank-based and says nothing about how well the best passage matches: answering uses the cosine to
decide whether to abstain.
Not handled here: reranking with a cross-encoder (none is shipped for this machine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from careerqa.embed.embedding import Embedder
from careerqa.errors import BadInput
from careerqa.index.store import Candidates, Store
from careerqa.text.spelling import SpellingCorrector
from careerqa.types import Chunk, Hit

# The dense relevance of a chunk: weights of its chunk cosine, its best sentence and its best runs of 3
# and 4 consecutive sentences, and the weight of the BM25 ranking beside it in the fusion. Chosen on
# the dev split of eval/questions.jsonl (53 answerable questions) over weights {0, .25, .5, 1} per
# signal and BM25 weights {.5, 1}: dev hit@1 0.642 -> 0.792, hit@5 0.962 -> 1.000, MRR 0.768 -> 0.866
# (the fusion before: chunk, best-sentence and BM25 rankings, weight 1 each). Equal weights for all
# four dense signals gave dev hit@1 0.774, MRR 0.855; runs of 3 alone (no BM25) 0.717.
RUN_WEIGHTS = ((1, 1 / 6), (3, 1 / 3), (4, 1 / 3))  # (run length, weight); a run of 1 is the best sentence
CHUNK_WEIGHT = 1 / 6
LEXICAL_WEIGHT = 0.5


def best_run_cosines(sentence_vectors: np.ndarray, query: np.ndarray, lengths: Sequence[int]) -> list[float]:
    """For each run length, the best cosine between ``query`` and the sum of that many consecutive
    sentence vectors (the whole chunk when it has fewer sentences; vectors are unit length)."""
    n = len(sentence_vectors)
    if n == 0:
        return [0.0 for _ in lengths]
    sums = np.cumsum(np.vstack([np.zeros((1, sentence_vectors.shape[1])), sentence_vectors]), axis=0)
    out = []
    for length in lengths:
        w = min(length, n)
        runs = sums[w:] - sums[:-w]
        norms = np.linalg.norm(runs, axis=1)
        cosines = (runs @ query) / np.where(norms > 0, norms, 1.0)
        out.append(float(cosines.max()))
    return out


def dense_relevance(chunk_cosine: float, sentence_vectors: np.ndarray, query: np.ndarray) -> float:
    """The blend of cosines the dense ranking orders candidates by (weights above)."""
    runs = best_run_cosines(sentence_vectors, query, [length for length, _ in RUN_WEIGHTS])
    return CHUNK_WEIGHT * chunk_cosine + sum(w * c for (_, w), c in zip(RUN_WEIGHTS, runs, strict=True))


def next_in_section(chunks: Iterable[Chunk]) -> dict[str, str]:
    """For each passage, the id of the passage after it in its document when both are of one section.

    A section cut into passages keeps talking about one thing: when the two best passages for a
    question are both of a section and one passage sits between them, that one is on the topic too,
    though it may not say its name. The seed's flattened list names "Docker" in one passage, a worked
    example using Docker is two passages on, and the paragraph describing Docker between them never
    says "Docker" (``headings`` cannot restore its title): "what is docker used for" finds the two
    outer passages, and search ranks the middle one third (``Retriever._bridged``). One link a
    passage, not one entry a pair: the map stays small on a large index."""
    by_source: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in chunks:
        by_source[chunk.source].append(chunk)
    following: dict[str, str] = {}
    for parts in by_source.values():
        parts.sort(key=lambda c: c.start)
        for before, after in zip(parts, parts[1:], strict=False):
            if before.section == after.section:
                following[before.chunk_id] = after.chunk_id
    return following


class Retriever:
    """Search one loaded index with one embedder."""

    def __init__(
        self, store: Store, embedder: Embedder, candidates: int = 30, rrf_k: int = 60, bridge: bool = True
    ):
        self.store = store
        self.bridge = bridge  # the rule ``bridged`` of ``answer/rules.py`` (off for its ablation)
        self.bridged = 0  # how often it moved a passage
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._search = store.candidate_search()  # built here, once (the FAISS store's BM25 postings)
        self._next = next_in_section(store.chunks.values())
        self.speller = SpellingCorrector.from_texts(
            (c.embedding_text() for c in store.chunks.values()), embedder.known_words()
        )

    def prepare(self, query: str) -> str:
        """The query as it is searched: misspelt words corrected to corpus words (see text/spelling.py)."""
        return self.speller.correct(query)[0]

    def search(self, query: str, top_k: int = 5) -> list[Hit]:
        query = query.strip()
        if not query:
            raise BadInput("the query is empty")
        if top_k < 1:
            raise BadInput(f"top-k must be at least 1, not {top_k}")
        return self.search_many([query], top_k)[0]

    def search_many(self, queries: Sequence[str], top_k: int = 5) -> list[list[Hit]]:
        """Search several queries with one embedder call (used by the benchmark and eval)."""
        queries = [self.prepare(q) for q in queries]
        vectors = self.embedder.embed_batch(list(queries))
        found = self._search.candidates(queries, vectors, self.candidates)
        return [self._fuse(v, c, top_k) for v, c in zip(vectors, found, strict=True)]

    def _bridged(self, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """``ranked`` with the passage between the top two, when one passage of their section sits
        between them (``next_in_section``), moved up behind them."""
        pairs = ((a, b), (b, a)) if len(ranked) >= 2 and (a := ranked[0][0]) != (b := ranked[1][0]) else ()
        mid = next((m for x, y in pairs if (m := self._next.get(x)) and self._next.get(m) == y), None)
        at = next((i for i, (cid, _) in enumerate(ranked) if cid == mid), None)
        if mid is None or at is None or at <= 2 or not self.bridge:
            return ranked
        self.bridged += 1
        ranked = [pair for pair in ranked if pair[0] != mid]
        ranked.insert(2, (mid, ranked[1][1]))  # ranked after the second, as if tied with it
        return ranked

    def _sentence_vectors(self, chunk_id: str) -> np.ndarray:
        chunk = self.store.chunks[chunk_id]
        if not chunk.sentence_spans:
            return np.zeros((0, len(self.store.vectors([chunk_id])[0])), dtype=np.float32)
        return self.store.sentence_vectors(chunk)

    def _fuse(self, vector: np.ndarray, found: Candidates, top_k: int) -> list[Hit]:
        """The best ``top_k`` of the candidates of three rankings (chunk ids, best first), ranked
        by dense relevance and BM25 (module docstring). The chunk and sentence vectors of candidates
        the search did not return (``found.vectors``) are read from the store."""
        stored, by_sentence, lexical = found.vectors, found.by_sentence, found.lexical
        dense_score = dict(found.dense)
        lexical_score = dict(lexical)
        # candidates: the best by chunk vector, by best sentence (a long passage about several things
        # can rank low as a whole) and by BM25
        candidates = list(dict.fromkeys([*dense_score, *(cid for cid, _ in by_sentence), *lexical_score]))
        missing = [cid for cid in candidates if cid not in dense_score and cid not in stored]
        if missing:  # lexical-only hits still get a cosine, so every hit can be judged alike
            vectors = self.store.vectors(missing)
            dense_score.update((cid, float(v @ vector)) for cid, v in zip(missing, vectors, strict=True))
        for cid in candidates:
            if cid not in dense_score:
                dense_score[cid] = float(stored[cid][0] @ vector)
        relevance = {
            cid: dense_relevance(
                dense_score[cid], stored[cid][1] if cid in stored else self._sentence_vectors(cid), vector
            )
            for cid in candidates
        }
        by_relevance = sorted(candidates, key=lambda cid: -relevance[cid])
        fused: dict[str, float] = defaultdict(float)
        for ranking, weight in ((by_relevance, 1.0), ([cid for cid, _ in lexical], LEXICAL_WEIGHT)):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] += weight / (self.rrf_k + rank + 1)
        ranked = self._bridged(sorted(fused.items(), key=lambda kv: (-kv[1], -relevance[kv[0]])))[:top_k]
        return [
            Hit(
                chunk=self.store.chunks[cid],
                score=round(score, 6),
                dense_score=round(dense_score[cid], 6),
                lexical_score=round(lexical_score[cid], 6) if cid in lexical_score else None,
                rank=rank + 1,
            )
            for rank, (cid, score) in enumerate(ranked)
        ]
