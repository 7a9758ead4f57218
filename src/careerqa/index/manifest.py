"""The index manifest as a typed value: what one committed index version holds and how it was built.

``Manifest`` is read from JSON by ``Manifest.from_dict`` (the one reader: it checks the format version
first, so an index of another format is ``IndexStale`` whatever its shape, then every field, so a damaged
manifest is ``IndexCorrupt`` naming where it came from) and written by ``Manifest.to_dict`` (the one
serialiser; ``faiss_files.write_manifest`` writes it atomically to ``manifest.json``, the Qdrant backend
into its meta point). The JSON keeps the shape it has always had, so an index built before this module
stays readable.

A sync builds a draft (embedder, chunking, files, chunk ids, skipped files); the store that saves it
seals it (``sealed``: format version, data file names, counts, vector index, build time).
Not handled here: reading the file and the data files (``index/faiss_files.py``, ``index/faiss_store.py``,
``index/qdrant_conn.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from careerqa.errors import IndexCorrupt, IndexStale
from careerqa.types import Flag

# The format of the whole index (data files and manifest), for both stores. Still 2 with IVF indexes:
# the FAISS files describe their own type, every reader since version 2 searches, reconstructs and
# removes through them alike, and a manifest without "vector_index" is exact. 2: sentence vectors beside
# the chunk vectors; 3: chunks carry page, title, tags, date; 4: chunks carry the spans of their
# sentences (before, each reader split the text again, so a new splitter broke ids).
FORMAT_VERSION = 4
REBUILD_HINT = "run `careerqa index --full` to rebuild it"


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    dim: int


@dataclass(frozen=True)
class ChunkingParams:
    """The chunker's rules; an index chunked by other rules is chunked again (only new text embedded)."""

    version: str  # chunking.CHUNKER_VERSION, "+injection." and injection.INJECTION_VERSION
    min_words: int
    max_words: int
    chrome: str  # boilerplate.CHROME_VERSION
    headings: str  # headings.HEADINGS_VERSION


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    chunk_ids: tuple[str, ...]  # in document order
    # Passages left out as instructions to a model (``ingest/injection.py``); "flags" in the JSON only
    # when there are some, so a manifest without them reads as before and older readers ignore them.
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class VectorIndexInfo:
    """How the vectors are held: FAISS index types (``vector_index.describe``) or where Qdrant is."""

    exact_below: int | None = None
    chunks: dict[str, Any] | None = None
    sentences: dict[str, Any] | None = None
    type: str | None = None  # "qdrant"
    location: str | None = None


@dataclass(frozen=True)
class Bm25Info:
    """The BM25 weights stored in Qdrant's sparse vectors (``index/qdrant_store.py``)."""

    k1: float
    b: float
    avg_length: float
    corpus_avg_length: float


@dataclass(frozen=True)
class QdrantInfo:
    collection: str | None = None
    generation: int = 0


@dataclass(frozen=True)
class Manifest:
    embedder: EmbedderInfo
    chunking: ChunkingParams | None = None  # None: rules this careerqa does not know (rechunk)
    files: dict[str, FileEntry] = field(default_factory=dict)  # corpus path -> entry, sorted by path
    chunk_ids: tuple[str, ...] | None = None  # sorted; None in a manifest that did not list them
    skipped_files: dict[str, str] = field(default_factory=dict)  # read but skipped: path -> sha256
    format_version: int = 0  # set by ``sealed``
    chunk_count: int = 0
    vectors_file: str = ""
    sentences_file: str = ""
    chunks_file: str = ""
    vector_index: VectorIndexInfo | None = None
    built_at: str | None = None
    bm25: Bm25Info | None = None
    qdrant: QdrantInfo | None = None

    # --- derived -----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """A short id of one committed index: its data files and build time."""
        keys = (self.vectors_file, self.sentences_file, self.chunks_file, self.built_at)
        return hashlib.sha256("|".join(str(k) for k in keys).encode()).hexdigest()[:12]

    @property
    def file_hashes(self) -> dict[str, str]:
        """Every corpus file this index has read, indexed or skipped, with its sha256."""
        return {**{path: entry.sha256 for path, entry in self.files.items()}, **self.skipped_files}

    @property
    def flagged(self) -> dict[str, list[dict[str, object]]]:
        """Path -> the flags of each file that has passages left out as instructions, sorted by path."""
        return {path: [f.as_dict() for f in e.flags] for path, e in sorted(self.files.items()) if e.flags}

    @property
    def data_files(self) -> tuple[str, str, str]:
        return self.vectors_file, self.sentences_file, self.chunks_file

    def require_embedder(self, name: str, dim: int) -> None:
        """``IndexStale`` unless this index was built by embedder ``name`` with ``dim`` dimensions."""
        if self.embedder.name != name or self.embedder.dim != dim:
            raise IndexStale(
                f"the index was built with embedder {self.embedder.name!r} ({self.embedder.dim} dims), "
                f"but {name!r} ({dim} dims) is configured; {REBUILD_HINT}"
            )

    def sealed(self, **committed: Any) -> Manifest:
        """The manifest a store commits: this draft with the current format, the build time and
        ``committed`` (``chunk_count``, the data file names, ``vector_index``, ``bm25``, ``qdrant``)."""
        return dataclasses.replace(
            self,
            format_version=FORMAT_VERSION,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            **committed,
        )

    # --- to and from JSON --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json`` (parts that are not set are left out)."""
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "embedder": dataclasses.asdict(self.embedder),
            "chunking": dataclasses.asdict(self.chunking) if self.chunking else None,
            "files": {path: _file_dict(e) for path, e in self.files.items()},
            "chunk_ids": list(self.chunk_ids) if self.chunk_ids is not None else None,
            "skipped_files": dict(self.skipped_files),
            "chunk_count": self.chunk_count,
            "vectors_file": self.vectors_file,
            "sentences_file": self.sentences_file,
            "chunks_file": self.chunks_file,
            "vector_index": _without_none(dataclasses.asdict(self.vector_index))
            if self.vector_index
            else None,
            "bm25": dataclasses.asdict(self.bm25) if self.bm25 else None,
            "qdrant": dataclasses.asdict(self.qdrant) if self.qdrant else None,
            "built_at": self.built_at,
        }
        return _without_none(out)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: object, where: str) -> Manifest:
        """Read a manifest; ``where`` names it in errors. Another format version raises ``IndexStale``
        (before anything else is read: older formats had other fields); a damaged one ``IndexCorrupt``."""
        hint = REBUILD_HINT
        if not isinstance(data, dict):
            raise IndexCorrupt(f"{where} is not an index manifest; {hint}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexStale(
                f"the index has format version {version}, this careerqa reads {FORMAT_VERSION}; {hint}"
            )
        return _Reader(data, where, hint).manifest()


def _file_dict(entry: FileEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": entry.sha256, "chunk_ids": list(entry.chunk_ids)}
    if entry.flags:
        out["flags"] = [f.as_dict() for f in entry.flags]
    return out


def _flags(value: object) -> tuple[Flag, ...]:
    """The flags of a file entry; malformed ones are left out (they only inform, nothing depends on them)."""
    if not isinstance(value, list):
        return ()
    flags = []
    for f in value:
        if isinstance(f, dict) and isinstance(f.get("line"), int) and isinstance(f.get("rule"), str):
            page = f.get("page")
            excerpt = f.get("excerpt")
            flags.append(
                Flag(
                    f["line"],
                    f["rule"],
                    excerpt if isinstance(excerpt, str) else "",
                    page if isinstance(page, int) else None,
                )
            )
    return tuple(flags)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class _Reader:
    """The fields of one manifest object, each checked; any problem is ``IndexCorrupt`` naming ``where``."""

    def __init__(self, data: dict[str, Any], where: str, hint: str) -> None:
        self.data, self.where, self.hint = data, where, hint

    def corrupt(self, problem: str) -> IndexCorrupt:
        return IndexCorrupt(f"the index file {self.where} {problem}; {self.hint}")

    def manifest(self) -> Manifest:
        d = self.data
        return Manifest(
            format_version=int(d["format_version"]),
            embedder=self.embedder(),
            chunking=self.chunking(),
            files=self.files(),
            chunk_ids=self.chunk_ids(),
            skipped_files=self.skipped_files(),
            chunk_count=self.number("chunk_count", 0),
            vectors_file=self.text("vectors_file"),
            sentences_file=self.text("sentences_file"),
            chunks_file=self.text("chunks_file"),
            vector_index=self.part("vector_index", VectorIndexInfo),
            built_at=d["built_at"] if isinstance(d.get("built_at"), str) else None,
            bm25=self.part("bm25", Bm25Info),
            qdrant=self.part("qdrant", QdrantInfo),
        )

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self.corrupt(f"has no valid {key!r}")
        return value

    def number(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int):
            raise self.corrupt(f"has no valid {key!r}")
        return value

    def embedder(self) -> EmbedderInfo:
        value = self.data.get("embedder")
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise self.corrupt("has no valid 'embedder'")
        dim = value.get("dim")
        if not isinstance(dim, int):
            raise self.corrupt("has no valid 'embedder'")
        return EmbedderInfo(value["name"], dim)

    def chunking(self) -> ChunkingParams | None:
        value = self.data.get("chunking")
        names = {f.name for f in dataclasses.fields(ChunkingParams)}
        if not isinstance(value, dict) or set(value) != names:
            return None  # rules of another careerqa: the next sync chunks again
        return ChunkingParams(**value)

    def files(self) -> dict[str, FileEntry]:
        value = self.data.get("files")
        ok = isinstance(value, dict) and all(
            isinstance(e, dict)
            and isinstance(e.get("sha256"), str)
            and isinstance(e.get("chunk_ids"), list)
            and all(isinstance(c, str) for c in e["chunk_ids"])
            for e in value.values()
        )
        if not ok or not isinstance(value, dict):
            raise self.corrupt("has malformed file entries")
        return {
            path: FileEntry(e["sha256"], tuple(e["chunk_ids"]), _flags(e.get("flags")))
            for path, e in value.items()
        }

    def chunk_ids(self) -> tuple[str, ...] | None:
        value = self.data.get("chunk_ids")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise self.corrupt("has malformed file entries")
        return tuple(value)

    def skipped_files(self) -> dict[str, str]:
        value = self.data.get("skipped_files")
        if not isinstance(value, dict):
            return {}
        return {path: sha for path, sha in value.items() if isinstance(sha, str)}

    def part(self, key: str, kind: Any) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        types = _PART_TYPES[kind]
        ok = isinstance(value, dict) and all(
            v is None or isinstance(v, types[k]) for k, v in value.items() if k in types
        )
        if not ok:
            raise self.corrupt(f"has no valid {key!r}")
        try:  # keys of a later careerqa are left out
            return kind(**{k: v for k, v in value.items() if k in types})
        except TypeError as exc:  # a field missing
            raise self.corrupt(f"has no valid {key!r}") from exc


_NUMBER = (int, float)
_PART_TYPES: dict[type, dict[str, Any]] = {
    VectorIndexInfo: {"exact_below": int, "chunks": dict, "sentences": dict, "type": str, "location": str},
    Bm25Info: {"k1": _NUMBER, "b": _NUMBER, "avg_length": _NUMBER, "corpus_avg_length": _NUMBER},
    QdrantInfo: {"collection": str, "generation": int},
}
