"""Shared fixtures: a deterministic bag-of-words embedder and small corpora under tmp_path."""

from __future__ import annotations

import hashlib
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from careerqa.config import Settings
from careerqa.embed.embedding import Embedder
from careerqa.generate.model_files import MODELS, ModelProfile
from careerqa.text.tokens import tokenize

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Passage KV caches (kv_cache.py) make `careerqa index` load the language model; tests that want
# them turn them on (tests/test_kv_*.py). Subprocesses (the crash test, the real server) inherit this.
os.environ.setdefault("CAREERQA_KV_CACHE", "off")
REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "corpus" / "skills-required-for-ai-jobs.txt"


class FakeEmbedder(Embedder):
    """Hashes stemmed words into buckets: texts that share words get similar vectors."""

    name = "fake-bow"
    dim = 256

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                bucket = int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dim
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


DOCS = {
    "maths.md": """# Maths for AI

Linear algebra, calculus and statistics are the foundation of machine learning. Vectors and matrices
describe how data flows through a neural network, and gradients tell the optimiser where to go.

If your maths feels rusty, Khan Academy and MIT OpenCourseWare have free courses on all three topics.
""",
    "cloud.md": """# Cloud and MLOps

Kubernetes schedules containers across a cluster, and Docker packages a model with its dependencies.
Monitoring catches data drift after a model is deployed to production.
""",
    "soft.txt": """Soft Skills

Communication matters: explain technical ideas to managers and clients in plain words.
Teamwork and code review are daily work in most AI teams.
""",
}


def make_settings(root: Path, extra_docs: dict[str, str] | None = None) -> Settings:
    """Settings for a small corpus (``DOCS`` plus ``extra_docs``) written under ``root``."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for name, text in {**DOCS, **(extra_docs or {})}.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return Settings(
        corpus_dir=corpus,
        index_dir=root / "index",
        cache_dir=root / "cache",
        embedder=FakeEmbedder.name,
        min_dense_score=0.2,
        # CAREERQA_TEST_BACKEND=qdrant runs the tests on Qdrant's local mode instead of FAISS files
        qdrant_url=str(root / "qdrant") if os.environ.get("CAREERQA_TEST_BACKEND") == "qdrant" else "",
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def corpus_dir(settings: Settings) -> Path:
    return settings.corpus_dir


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def fake_model_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: Sequence[bytes], prefix: str
) -> ModelProfile:
    """A 'model' named tiny whose part modules are fake modules pointing at ``blobs`` under tmp_path."""
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir(exist_ok=True)
    names = []
    for i, blob in enumerate(blobs, start=1):
        path = parts_dir / f"part{i:02d}.bin"
        path.write_bytes(blob)
        module = types.ModuleType(f"{prefix}{i}")
        module.get_part_path = lambda path=path: str(path)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        names.append(module.__name__)
    whole = b"".join(blobs)
    profile = ModelProfile(
        name="tiny",
        parts=tuple(names),
        version="9.9.9",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        filename="tiny.gguf",
    )
    monkeypatch.setitem(MODELS, "tiny", profile)
    return profile


@pytest.fixture(scope="session")
def real_engine(tmp_path_factory):
    """The shipped corpus indexed with the real embedder, once per test run (read-only for tests)."""
    import shutil

    from careerqa.engine.core import Engine

    tmp = tmp_path_factory.mktemp("real-seed")
    shutil.copytree(REPO / "corpus", tmp / "corpus")
    engine = Engine(Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "index"))
    engine.sync()
    return engine
