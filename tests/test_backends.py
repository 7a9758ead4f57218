"""The retrieval contract, run against both backends: FAISS files (the default) and Qdrant in
qdrant-client's embedded local mode. Same sync reports, same incremental embedding, same versions,
same `/search` shape, and the same rankings (up to ties) for the same index."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.errors import IndexStale, ModelUnavailable
from careerqa.index.sync import sync_index
from careerqa.types import hit_to_dict
from careerqa.web.app import create_app

from .conftest import REPO, FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import live_server

pytest.importorskip("qdrant_client")
from careerqa.index import qdrant_conn  # noqa: E402 - only with qdrant-client installed

BACKENDS = ["faiss", "qdrant"]
NEW_DOC = "# Agritech\n\nAgritech firms forecast crop yields from satellite images with remote sensing.\n"


def with_backend(settings: Settings, backend: str) -> Settings:
    if backend == "qdrant":
        return settings.replace(qdrant_url=str(settings.index_dir.parent / "qdrant"))
    return settings


@pytest.fixture(autouse=True)
def _close_qdrant() -> Iterator[None]:
    yield
    qdrant_conn.close_clients()  # free each local-mode folder for the next test


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bsettings(settings: Settings, backend: str) -> Settings:
    return with_backend(settings, backend)


def sync(settings: Settings, embedder: FakeEmbedder, full: bool = False):
    return sync_index(settings, lambda: embedder, embedder_name=embedder.name, dim=embedder.dim, full=full)


def engine_for(settings: Settings, embedder: FakeEmbedder | None = None, auto_sync: bool = True) -> Engine:
    return Engine(
        settings, embedder=embedder or FakeEmbedder(), generator=FakeGenerator([]), auto_sync=auto_sync
    )


def test_build_then_noop_then_edit_embeds_only_what_changed(bsettings, backend):
    embedder = FakeEmbedder()
    first = sync(bsettings, embedder)
    assert sorted(first.files_added) == ["cloud.md", "maths.md", "soft.txt"] and first.written
    assert first.chunks_embedded == first.chunk_count > 0
    assert (bsettings.index_dir / "manifest.json").exists() == (backend == "faiss")

    embedder.texts.clear()
    again = sync(bsettings, embedder)
    assert not again.written and embedder.texts == []

    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    (bsettings.corpus_dir / "soft.txt").unlink()
    maths = bsettings.corpus_dir / "maths.md"
    maths.write_text(maths.read_text() + "\n## Probability\n\nBayes' theorem updates beliefs.\n")
    report = sync(bsettings, embedder)
    assert report.files_added == ["new.md"] and report.files_changed == ["maths.md"]
    assert report.files_removed == ["soft.txt"]
    assert report.chunks_embedded == report.chunks_added == 2
    assert all("Bayes" in t or "Agritech" in t or "satellite" in t for t in embedder.texts)

    engine = engine_for(bsettings)
    assert len(engine.view().store) == report.chunk_count
    assert engine.search("satellite crop yields")[0].chunk.source == "new.md"
    assert all(h.chunk.source != "soft.txt" for h in engine.search("communication teamwork code review"))


def test_search_shape_is_the_same(bsettings):
    engine = engine_for(bsettings)
    hits = engine.search("linear algebra for neural networks", top_k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].chunk.source == "maths.md"
    row = hit_to_dict(hits[0])
    assert set(row) >= {"n", "chunk_id", "source", "section", "text", "score", "dense_score", "span"}
    assert 0 < row["dense_score"] <= 1.0 and row["score"] > 0
    assert hits == sorted(hits, key=lambda h: -h.score)


class JitterEmbedder(FakeEmbedder):
    """The bag-of-words embedder plus a small fixed offset per text: its many exact ties in cosine
    (texts sharing the same words) would be broken by each engine's own rule, which differs."""

    def embed_batch(self, texts):
        vectors = super().embed_batch(texts)
        for row, text in enumerate(texts):
            seed = int(hashlib.md5(text.encode()).hexdigest()[:8], 16)
            vectors[row] += 0.05 * np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            vectors[row] /= np.linalg.norm(vectors[row])
        return vectors


def test_both_backends_rank_the_real_corpus_alike(tmp_path):
    """The shipped corpus and the 128 eval questions through both backends: the same best passage
    every time, the same five and the same scores almost always. Both fuse the same candidate lists
    in careerqa (retrieval.py); ranks differ only where one of the candidate rankings holds a tie
    (two chunks with the same BM25 score, broken by document order in careerqa and otherwise in
    Qdrant) or where the FAISS backend's best-sentence ranking (the chunks of its 4k best sentences)
    is shorter than Qdrant's exact MAX_SIM one."""
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    base = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", embedder=FakeEmbedder.name)
    questions = [
        json.loads(line)["question"]
        for line in (REPO / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    results = {}
    for backend in BACKENDS:
        engine = engine_for(with_backend(base, backend), JitterEmbedder())
        results[backend] = engine.view().retriever.search_many(questions, 5)
    same_top1 = same_top5 = same_order = 0
    for faiss_hits, qdrant_hits in zip(results["faiss"], results["qdrant"], strict=True):
        ids_f = [h.chunk.chunk_id for h in faiss_hits]
        ids_q = [h.chunk.chunk_id for h in qdrant_hits]
        same_top1 += ids_f[0] == ids_q[0]
        # every field of a chunk (source, span, kind, metadata) comes back from Qdrant as it went in
        assert all(
            a.chunk == b.chunk
            for a in faiss_hits
            for b in qdrant_hits
            if a.chunk.chunk_id == b.chunk.chunk_id
        )
        same_top5 += set(ids_f) == set(ids_q)
        same_order += ids_f == ids_q and all(
            a.score == pytest.approx(b.score, abs=2e-6)
            and a.dense_score == pytest.approx(b.dense_score, abs=2e-6)
            for a, b in zip(faiss_hits, qdrant_hits, strict=True)
        )
    n = len(questions)
    assert n > 100
    # Measured: 128 / 127 / 119 of 128 with the old tokenizer; 127 / 127 / 122 with Snowball stems and
    # spelling correction (issue 14): the one other best passage is a near tie of fused scores
    # (0.04609 vs 0.04615) on the prompt-injection question. 126 / 127 / 120 with the list titles put
    # back before their paragraphs (headings.py): one more near tie of fused scores (0.04712 vs 0.04707,
    # "which lib for crunching arrays n matrices in python").
    counts = (same_top1, same_top5, same_order)
    assert same_top1 >= n - 2 and same_top5 >= n - 2 and same_order >= 0.9 * n, counts


def test_a_held_view_keeps_its_version_while_a_sync_commits_another(bsettings):
    engine = engine_for(bsettings)
    old = engine.view()
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    (bsettings.corpus_dir / "cloud.md").unlink()
    engine.sync()
    new = engine.view()
    assert new.version != old.version
    old_ids, new_ids = set(old.store.chunks), set(new.store.chunks)
    for hit in engine.search("satellite crop yields remote sensing", top_k=10, view=old):
        assert hit.chunk.chunk_id in old_ids  # never a chunk of the newer version
    assert engine.search("satellite crop yields", view=new)[0].chunk.source == "new.md"
    assert all(h.chunk.chunk_id in new_ids for h in engine.search("kubernetes docker", view=new))


def test_another_process_commit_is_noticed(bsettings):
    server_engine = engine_for(bsettings)
    before = server_engine.view().version
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    sync(bsettings, FakeEmbedder())  # as `careerqa index` would, through its own store
    assert server_engine.view().version != before
    assert server_engine.search("satellite crop yields")[0].chunk.source == "new.md"


def test_a_sync_killed_before_its_commit_leaves_the_old_version(bsettings, backend, monkeypatch):
    engine = engine_for(bsettings)
    before = engine.view()
    (bsettings.corpus_dir / "new.md").write_text(NEW_DOC, encoding="utf-8")
    (bsettings.corpus_dir / "cloud.md").unlink()

    class Killed(Exception):
        pass

    def die(*args, **kwargs):
        raise Killed

    target = (
        "careerqa.index.faiss_store.write_atomic"
        if backend == "faiss"
        else "careerqa.index.qdrant_store.QdrantStore._bm25_state"
    )
    monkeypatch.setattr(target, die)  # after the new chunks are written, before the commit
    with pytest.raises(Killed):
        sync(bsettings, FakeEmbedder())
    monkeypatch.undo()

    fresh = engine_for(bsettings, auto_sync=False)  # what a server that does not sync would serve
    assert fresh.view().version == before.version
    assert set(fresh.view().store.chunks) == set(before.store.chunks)
    assert all(h.chunk.source != "new.md" for h in fresh.search("satellite crop yields", top_k=10))
    assert any(h.chunk.source == "cloud.md" for h in fresh.search("kubernetes docker", top_k=10))

    report = sync(bsettings, FakeEmbedder())
    assert report.written and report.files_added == ["new.md"] and report.files_removed == ["cloud.md"]
    after = engine_for(bsettings)
    assert after.search("satellite crop yields")[0].chunk.source == "new.md"
    if backend == "qdrant":  # nothing left behind: exactly the committed chunks are stored
        store = after.view().store
        assert store.client.count(store.collection, exact=True).count == len(store)


def test_full_rebuild_and_a_different_embedder(bsettings, backend):
    sync(bsettings, FakeEmbedder())
    report = sync(bsettings, FakeEmbedder(), full=True)
    assert report.written and report.chunks_embedded == report.chunk_count
    if backend == "qdrant":
        client = qdrant_conn.client_for(bsettings)
        data = [c.name for c in client.get_collections().collections if "-data-" in c.name]
        assert len(data) == 1  # the previous collection went with the commit

    class Other(FakeEmbedder):
        name = "other-embedder"

    with pytest.raises(IndexStale, match="index --full"):
        sync(bsettings, Other())


def test_search_over_http_has_the_same_shape(bsettings):
    engine = engine_for(bsettings)
    app = create_app(bsettings, engine=engine)
    with live_server(app) as url:
        response = httpx.post(f"{url}/search", json={"query": "kubernetes docker", "top_k": 2}, timeout=30)
        health = httpx.get(f"{url}/health", timeout=30).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"index_version", "results"} and body["index_version"] == health["index"]["version"]
    assert [r["n"] for r in body["results"]] == [1, 2] and body["results"][0]["source"] == "cloud.md"
    assert health["index"]["chunks"] == len(engine.view().store)


def test_a_local_qdrant_folder_held_by_another_process_is_a_clear_error(tmp_path):
    settings = with_backend(make_settings(tmp_path), "qdrant")
    code = (
        "import sys, time; from qdrant_client import QdrantClient; "
        f"c = QdrantClient(path={str(settings.qdrant_url)!r}); print('open', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="cannot open the Qdrant store"):
            engine_for(settings).view()
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


def test_an_unreachable_qdrant_server_is_one_line_and_exit_1(tmp_path):
    from typer.testing import CliRunner

    from careerqa.cli import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    settings = make_settings(tmp_path)
    result = CliRunner().invoke(
        app,
        ["search", "maths", "--corpus", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)],
        env={"CAREERQA_QDRANT_URL": f"http://127.0.0.1:{port}"},
    )
    assert result.exit_code == 1
    assert f"error: Qdrant at http://127.0.0.1:{port} failed" in result.output
    assert "Connection refused" in result.output and "Traceback" not in result.output


def test_a_qdrant_sync_killed_after_its_commit_hides_the_stale_points_until_the_next_sync(settings):
    qsettings = with_backend(settings, "qdrant")
    sync(qsettings, FakeEmbedder())
    client = qdrant_conn.client_for(qsettings)
    (qsettings.corpus_dir / "cloud.md").unlink()

    class Killed(Exception):
        pass

    delete, calls = client.delete, []

    def die_on_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:  # the first clears what an earlier sync left; the second follows the commit
            raise Killed
        return delete(*args, **kwargs)

    client.delete = die_on_the_second
    with pytest.raises(Killed):
        sync(qsettings, FakeEmbedder())
    del client.delete

    engine = engine_for(qsettings, auto_sync=False)
    store = engine.view().store
    assert all(c.source != "cloud.md" for c in store.chunks.values())  # committed: cloud.md is gone
    assert all(h.chunk.source != "cloud.md" for h in engine.search("kubernetes docker", top_k=10))
    stored = client.count(store.collection, exact=True).count
    assert stored > len(store)  # the stale points are still stored, and hidden

    report = sync(qsettings, FakeEmbedder())  # nothing changed: it only cleans up
    assert not report.written
    assert client.count(store.collection, exact=True).count == len(store)


def test_doctor_checks_the_qdrant_index(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from careerqa import cli

    qsettings = with_backend(make_settings(tmp_path), "qdrant")
    monkeypatch.setattr("careerqa.engine.models.EMBEDDER_DIMS", {FakeEmbedder.name: FakeEmbedder.dim})
    monkeypatch.setenv("CAREERQA_QDRANT_URL", qsettings.qdrant_url)
    monkeypatch.setenv("CAREERQA_EMBEDDER", FakeEmbedder.name)
    args = ["doctor", "--json", "--no-check", "--corpus", str(qsettings.corpus_dir)]
    missing = json.loads(CliRunner().invoke(cli.app, args).stdout)["index"]
    assert missing["state"] == "missing" and missing["backend"] == "qdrant"
    report = sync(qsettings, FakeEmbedder())
    index = json.loads(CliRunner().invoke(cli.app, args).stdout)["index"]
    assert index["state"] == "ok" and index["chunks"] == report.chunk_count
    assert index["corpus"] == "in sync" and index["dir"] == f"qdrant {qsettings.qdrant_url}"


def test_pdf_pages_round_trip_and_unchanged_pdfs_are_not_read_again_with_qdrant(tmp_path, monkeypatch):
    import careerqa.ingest.corpus as corpus_module

    from . import docfixtures as fx

    calls: list[str] = []
    real = corpus_module.extract

    def counting(suffix: str, raw: bytes):
        calls.append(suffix)
        return real(suffix, raw)

    monkeypatch.setattr(corpus_module, "extract", counting)
    qsettings = with_backend(make_settings(tmp_path), "qdrant")
    fx.guide_pdf(qsettings.corpus_dir / "guide.pdf")
    engine = engine_for(qsettings)
    monkeypatch.setattr(corpus_module, "_BINARY_CACHE", type(corpus_module._BINARY_CACHE)())
    assert "guide.pdf" in engine.sync().files_added and calls == [".pdf"]
    (qsettings.corpus_dir / "maths.md").write_text("# Maths\n\nProbability matters most.\n")
    monkeypatch.setattr(corpus_module, "_BINARY_CACHE", type(corpus_module._BINARY_CACHE)())
    report = engine.sync()
    assert report.files_changed == ["maths.md"] and "guide.pdf" in report.files_unchanged
    assert calls == [".pdf"]  # not read again: its hash matched the Qdrant manifest
    qdrant_conn.close_clients()
    pages = {c.page for c in engine_for(qsettings).view().store.chunks.values() if c.source == "guide.pdf"}
    assert pages == {1, 2, 3, 4}


def test_the_view_built_on_first_use_is_kept_and_so_is_its_answer_cache(bsettings):
    answer = "Linear algebra, calculus and statistics are the foundation of machine learning [1]."
    engine = Engine(bsettings, embedder=FakeEmbedder(), generator=FakeGenerator(lambda messages: answer))
    first = engine.ask("Which maths is the foundation of machine learning?")  # builds the index first
    view = engine.view()
    assert engine.view() is view  # nothing was committed since: the same version, not reloaded
    again = engine.ask("which maths is the foundation of machine learning")
    assert again.route == "cache" and again.text == first.text


def test_a_moved_chunk_keeps_its_vector_and_gets_its_new_span(bsettings):
    embedder = FakeEmbedder()
    sync(bsettings, embedder)
    path = bsettings.corpus_dir / "cloud.md"
    path.write_text("\n\n\n" + path.read_text())
    report = sync(bsettings, embedder)
    assert report.written and report.chunks_embedded == 0 and report.files_changed == ["cloud.md"]
    raw = path.read_text()
    chunks = [
        c
        for c in engine_for(bsettings, auto_sync=False).view().store.chunks.values()
        if c.source == "cloud.md"
    ]
    assert chunks and all(raw[c.start : c.end].split()[:3] == c.text.split()[:3] for c in chunks)
