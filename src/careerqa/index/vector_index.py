"""Which FAISS index holds a set of unit vectors, chosen by how many there are.

Below ``EXACT_BELOW`` vectors the index is exact: ``IndexIDMap2(IndexFlatIP)``, which scans every
vector (about 24 ms for one query over 100k vectors of 384 dims on 2 cores, see bench/RESULTS.md).
From there on it is an inverted file, ``IndexIVFFlat`` with the inner-product metric: the vectors
are split into ``nlist`` clusters by k-means and a query scans only the ``nprobe`` clusters nearest
to it. Vectors stay uncompressed, so the cosines it returns are exact; only a neighbour in a cluster
that was not scanned can be missed. ``nprobe`` was tuned with ``bench/bench_scale.py`` so that
recall@10 against the exact search is at least 0.95 on sentence-embedding-like vectors.

IVF rather than HNSW because an IVF index removes vectors in place (``remove_ids``), so the
incremental sync stays incremental, and because it builds in seconds where HNSW takes minutes on
2 cores (measured in bench/RESULTS.md). IVF keeps arbitrary int64 ids itself and a hash-table
direct map finds a vector by id, so it needs no ``IndexIDMap2`` wrapper (that wrapper assumes the
inner index renumbers rows on removal, as a flat index does and an IVF index does not).

Not handled here: compressing vectors (PQ, SQ8), which a corpus of millions of sentence vectors
would need to fit in memory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EXACT_BELOW = 50_000  # vectors; an exact scan of fewer takes ~9 ms of one core or less per query
TRAIN_PER_LIST = 40  # k-means training points per cluster (FAISS warns below 39)
# Share of the clusters a query scans: the smallest that reached recall@10 >= 0.95 at each measured
# size (bench/RESULTS.md; nlist 316: 128 -> 0.981 where 64 gave 0.933; nlist 1000: 256 -> 0.974 where
# 128 gave 0.928). A larger nlist needs a smaller share; beyond 1M vectors that is an extrapolation.
NPROBE_SHARE = 0.41
NPROBE_SHARE_FROM_1000_LISTS = 0.26


def index_spec(count: int, exact_below: int = EXACT_BELOW) -> dict[str, Any]:
    """The index type and parameters for ``count`` vectors (what ``describe`` reports)."""
    if count < exact_below:
        return {"type": "flat"}
    # sqrt(count) clusters, each with enough points to train k-means
    nlist = max(1, min(round(math.sqrt(count)), count // TRAIN_PER_LIST))
    return {"type": "ivf_flat", "nlist": nlist, "nprobe": nprobe_for(nlist)}


def nprobe_for(nlist: int) -> int:
    share = NPROBE_SHARE if nlist < 1000 else NPROBE_SHARE_FROM_1000_LISTS
    return min(nlist, math.ceil(nlist * share))


def describe(index: Any) -> dict[str, Any]:
    """The type and parameters of a FAISS index made by ``build``."""
    import faiss

    if isinstance(index, faiss.IndexIVFFlat):
        return {"type": "ivf_flat", "nlist": int(index.nlist), "nprobe": int(index.nprobe)}
    return {"type": "flat"}


def fits(index: Any, spec: dict[str, Any]) -> bool:
    """Whether ``index`` can stay as it is for ``spec``: same type, and an IVF index's cluster
    count within a factor of 2 of the wanted one (k-means is redone only when the corpus has grown
    or shrunk a lot since it was trained)."""
    have = describe(index)
    if have["type"] != spec["type"]:
        return False
    if spec["type"] == "ivf_flat":
        return spec["nlist"] / 2 <= have["nlist"] <= spec["nlist"] * 2
    return True


def build(spec: dict[str, Any], dim: int, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """A new index of type ``spec`` holding ``vectors`` under ``ids`` (int64)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    index: Any  # faiss's stubs are incomplete
    if spec["type"] == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    elif spec["type"] == "ivf_flat":
        nlist = int(spec["nlist"])
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = min(len(vectors), TRAIN_PER_LIST * nlist)
        rows = np.random.default_rng(0).choice(len(vectors), sample, replace=False)
        index.train(vectors[np.sort(rows)])
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # by id
        index.nprobe = int(spec["nprobe"])
    else:
        raise ValueError(f"unknown index type {spec['type']!r}")
    if len(vectors):
        index.add_with_ids(vectors, ids)
    return index


def contents(index: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """All (ids, vectors) of an index made by ``build``, in no particular order."""
    import faiss

    if isinstance(index, faiss.IndexIVFFlat):
        from faiss.contrib.inspect_tools import get_invlist

        parts = [get_invlist(index.invlists, lst) for lst in range(index.nlist)]
        ids = np.concatenate([p[0] for p in parts] + [np.zeros(0, dtype=np.int64)])
        codes = [p[1].view(np.float32).reshape(-1, dim) for p in parts]
        return ids, np.concatenate(codes + [np.zeros((0, dim), dtype=np.float32)])
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    return ids, index.index.reconstruct_n(0, index.ntotal) if len(ids) else np.zeros((0, dim), np.float32)


def refit(index: Any, dim: int, exact_below: int = EXACT_BELOW) -> Any:
    """``index`` itself when it suits its vector count, else the same vectors in one that does."""
    spec = index_spec(index.ntotal, exact_below)
    if fits(index, spec):
        return index
    ids, vectors = contents(index, dim)
    return build(spec, dim, ids, vectors)
