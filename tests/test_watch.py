"""``index --watch`` and ``serve --watch``: a real watcher (watchfiles) on a folder the tests change,
with the fake embedder; and one run of the real ``careerqa index --watch`` with the packaged embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
import careerqa.index.watch as watch_module
from careerqa.config import Settings
from careerqa.engine.core import Engine
from careerqa.errors import CareerQAError
from careerqa.index.sync import SyncReport
from careerqa.index.watch import is_document_change, sync_line, watch_corpus
from careerqa.web.app import create_app

from . import docfixtures as fx
from .conftest import REPO, FakeEmbedder, make_settings
from .fakes import FakeGenerator
from .helpers import live_server
from .test_cli import fake_cli  # noqa: F401 - a fixture

WAIT_S = 20


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Watcher:
    """``watch_corpus`` in a thread over an engine with the fake embedder; every result is kept."""

    def __init__(self, settings: Settings) -> None:
        # auto_sync off: a view loaded by the test must never sync the corpus itself.
        self.engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]), auto_sync=False)
        self.results: list[SyncReport | CareerQAError] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=watch_corpus,
            args=(settings.corpus_dir, self.engine.sync, self.results.append, self.stop),
            kwargs={"quiet_ms": 200, "on_ready": self.ready.set},
            daemon=True,
        )

    def sources(self) -> set[str]:
        return {c.source for c in self.engine.view().store.chunks.values()}

    def written(self) -> list[SyncReport]:
        return [r for r in self.results if isinstance(r, SyncReport) and r.written]


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Watcher]:
    w = Watcher(make_settings(tmp_path))
    w.thread.start()
    assert w.ready.wait(WAIT_S), "the watcher did not start"
    yield w
    w.stop.set()
    w.thread.join(timeout=10)
    assert not w.thread.is_alive()


def test_new_pdf_and_docx_are_indexed_then_edits_and_deletions_follow(watcher):
    corpus = watcher.engine.settings.corpus_dir
    assert watcher.written()  # the first sync built the index
    fx.guide_pdf(corpus / "guide.pdf")
    fx.handbook_docx(corpus / "handbook.docx")
    wait_for(lambda: {"guide.pdf", "handbook.docx"} <= watcher.sources(), "the new files in the index")
    top = watcher.engine.search("counter the first offer fifteen percent salary negotiation")[0]
    assert top.chunk.label() == "guide.pdf › p. 4 › Salary Negotiation"

    fx.handbook_docx(corpus / "handbook.docx", extra="Pair programming with a mentor doubles what you learn.")
    wait_for(
        lambda: any("Pair programming" in c.text for c in watcher.engine.view().store.chunks.values()),
        "the edit in the index",
    )
    (corpus / "guide.pdf").unlink()
    wait_for(lambda: any(r.files_removed for r in watcher.written()), "the sync of the deletion")
    assert [r.files_removed for r in watcher.written() if r.files_removed] == [["guide.pdf"]]
    assert "guide.pdf" not in watcher.sources()


def test_swap_files_backups_and_hidden_files_do_not_wake_it(watcher):
    corpus = watcher.engine.settings.corpus_dir
    before = len(watcher.results)
    for name in (".maths.md.swp", "maths.md~", "4913", ".#maths.md", "notes.tmp", "draft.docx.crdownload"):
        (corpus / name).write_bytes(b"editor noise")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "x.md").write_text("# Hidden\n\nNot a corpus file.\n")
    time.sleep(1.5)  # several quiet periods
    assert len(watcher.results) == before


def test_a_file_written_in_two_parts_ends_up_whole(watcher):
    corpus = watcher.engine.settings.corpus_dir
    data = fx.guide_pdf(watcher.engine.settings.index_dir.parent / "whole.pdf").read_bytes()
    target = corpus / "guide.pdf"
    with open(target, "wb") as fh:  # the first half, then a pause longer than the quiet period
        fh.write(data[: len(data) // 2])
        fh.flush()
        wait_for(
            lambda: any(
                isinstance(r, SyncReport) and any(w.startswith("skipped guide.pdf") for w in r.warnings)
                for r in watcher.results
            ),
            "a sync that skipped the half-written PDF",
        )
        fh.write(data[len(data) // 2 :])
    wait_for(lambda: "guide.pdf" in watcher.sources(), "the whole PDF in the index")
    pages = {c.page for c in watcher.engine.view().store.chunks.values() if c.source == "guide.pdf"}
    assert pages == {1, 2, 3, 4}


def test_atomic_saves_and_renames(watcher):
    corpus = watcher.engine.settings.corpus_dir
    temp = corpus / ".careers.md.tmp1234"  # how many editors save: write a hidden temp file, rename it
    temp.write_text("# Careers\n\nA data analyst becomes a data scientist by learning statistics.\n")
    os.replace(temp, corpus / "careers.md")
    wait_for(lambda: "careers.md" in watcher.sources(), "the saved file")
    os.replace(corpus / "careers.md", corpus / "paths.md")
    wait_for(lambda: "paths.md" in watcher.sources() and "careers.md" not in watcher.sources(), "the rename")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "deep.md").write_text("# Deep\n\nKubernetes operators automate model rollouts.\n")
    wait_for(lambda: "sub/deep.md" in watcher.sources(), "a file in a new folder")
    os.replace(corpus / "sub", corpus / "moved")
    seed = {"cloud.md", "maths.md", "soft.txt", "paths.md"}
    wait_for(lambda: watcher.sources() - seed == {"moved/deep.md"}, "the move")


def test_which_changes_matter(tmp_path):
    root = tmp_path
    assert is_document_change(str(root / "a.pdf"), root)
    assert is_document_change(str(root / "sub" / "b.DOCX"), root)
    assert is_document_change(str(root / "folder"), root)  # a folder, added or removed
    for name in (".a.md.swp", "a.md~", "4913", "x.tmp", ".git/config", "sub/.#a.md"):
        assert not is_document_change(str(root / name), root), name
    assert not is_document_change("/elsewhere/a.md", root)


def test_sync_line_names_what_changed():
    report = SyncReport(files_added=["a.pdf"], files_changed=["b.md"], files_removed=["c.txt"])
    report.chunks_added, report.chunks_removed, report.chunk_count = 5, 2, 40
    report.seconds["total"] = 0.42
    line = sync_line(report, now=0)
    assert line.endswith("synced +a.pdf ~b.md -c.txt: 5 chunks added, 2 removed, 40 in the index (0.4 s)")
    assert "\n" not in line


def test_cli_index_watch_prints_one_line_per_sync(fake_cli, settings, monkeypatch):  # noqa: F811
    stop = threading.Event()
    real = watch_module.watch_corpus

    def stoppable(*args, **kwargs):
        return real(*args, **{**kwargs, "stop": stop})

    monkeypatch.setattr(watch_module, "watch_corpus", stoppable)
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(
            out=CliRunner().invoke(cli.app, ["index", "--watch"], obj=fake_cli["obj"])
        ),
        daemon=True,
    )
    thread.start()
    wait_for(lambda: (settings.index_dir / "manifest.json").exists(), "the first sync")
    fx.guide_pdf(settings.corpus_dir / "guide.pdf")

    def indexed() -> bool:  # from the manifest: loading a view here would sync in this thread
        manifest = json.loads((settings.index_dir / "manifest.json").read_text())
        return "guide.pdf" in manifest["files"]

    wait_for(indexed, "the PDF in the index")
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=10)
    out = result["out"]
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, lines  # the first build, then the PDF
    assert "synced +cloud.md +maths.md +soft.txt" in lines[0]
    assert "synced +guide.pdf:" in lines[1]
    assert "watching" in out.stderr


def test_serve_watch_swaps_in_each_version(tmp_path):
    settings = make_settings(tmp_path).replace(watch_quiet_ms=200)
    engine = Engine(settings, embedder=FakeEmbedder(), generator=FakeGenerator([]), auto_sync=False)
    with live_server(create_app(settings, engine=engine, watch=True)) as url, httpx.Client(base_url=url) as c:
        version = c.get("/health").json()["index"]["version"]
        fx.guide_pdf(settings.corpus_dir / "guide.pdf")

        def found() -> bool:
            hits = c.post("/search", json={"query": "bias variance tradeoff whiteboard"}).json()["results"]
            return bool(hits) and hits[0]["source"] == "guide.pdf"

        wait_for(found, "the PDF found through the server")
        assert c.get("/health").json()["index"]["version"] != version
        hit = c.post("/search", json={"query": "bias variance tradeoff whiteboard"}).json()["results"][0]
        assert hit["page"] == 3


@pytest.mark.real
def test_real_index_watch_then_search_finds_pages(tmp_path):
    """The issue's check with the packaged embedder: a PDF and a DOCX dropped into the corpus while
    ``careerqa index --watch`` runs are searchable within seconds, with their pages."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.txt").write_text((REPO / "corpus" / "skills-required-for-ai-jobs.txt").read_text())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    args = ["--corpus", str(corpus), "--index-dir", str(tmp_path / "index")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "careerqa", "index", "--watch", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(x) for x in proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(r["written"] for r in lines), "the first build", timeout=300)
        dropped = time.monotonic()
        fx.guide_pdf(corpus / "guide.pdf")
        fx.handbook_docx(corpus / "handbook.docx")
        wait_for(
            lambda: (
                any({"guide.pdf", "handbook.docx"} <= set(r["files_added"]) for r in lines)
                or {"guide.pdf", "handbook.docx"} <= {f for r in lines for f in r["files_added"]}
            ),
            "the sync of the dropped files",
            timeout=120,
        )
        seconds = time.monotonic() - dropped
        out = subprocess.run(
            [sys.executable, "-m", "careerqa", "search", "--json", "how much to counter a job offer", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        top = json.loads(out.stdout)["results"][0]
        assert top["label"] == "guide.pdf › p. 4 › Salary Negotiation", top
        print(f"dropped files synced after {seconds:.1f} s")
        assert seconds < 60
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_watching_a_missing_folder_is_a_clear_error(fake_cli, tmp_path):  # noqa: F811
    out = CliRunner().invoke(
        cli.app, ["index", "--watch", "--corpus", str(tmp_path / "nope")], obj=fake_cli["obj"]
    )
    assert out.exit_code == 1
    assert "error: corpus folder" in out.stderr and "does not exist" in out.stderr
