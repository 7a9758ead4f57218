"""Bad corpus input: every bad file is skipped with a warning that names it, and nothing else is lost."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine
from careerqa.errors import CorpusEmpty
from careerqa.index.faiss_store import IndexStore
from careerqa.ingest.corpus import MAX_DEPTH, MAX_FILE_BYTES, file_hashes, load_corpus

from .conftest import DOCS, FakeEmbedder
from .fakes import FakeGenerator

runner = CliRunner()
GOOD = sorted(DOCS)


def _only(warnings: list[str], name: str) -> str:
    found = [w for w in warnings if name in w]
    assert len(found) == 1, (name, warnings)
    return found[0]


def _good_docs_only(corpus: Path) -> list[str]:
    docs, warnings = load_corpus(corpus)
    assert [d.path for d in docs] == GOOD, warnings
    assert file_hashes(corpus).keys() == set(GOOD)  # the engine's change check agrees with the sync
    return warnings


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b" \n\t\r\n", "empty file"),
        ("nbsp.txt", "\u00a0\u2028 \n".encode(), "empty file"),
        ("bom-only.txt", b"\xef\xbb\xbf", "empty file"),
        ("blob.txt", b"PK\x03\x04\x00\x00binary", "binary"),
        ("latin1.md", "Caf\u00e9 au lait\n".encode("latin-1"), "not valid UTF-8 (bad byte at offset 3)"),
        ("cut.txt", "Half a char: \u20ac".encode()[:-1], "not valid UTF-8"),
        ("utf16.txt", "Hello".encode("utf-16"), "binary"),
    ],
)
def test_bad_file_is_skipped_and_the_rest_loads(corpus_dir, name, content, reason):
    (corpus_dir / name).write_bytes(content)
    assert reason in _only(_good_docs_only(corpus_dir), name)


def test_a_50_mb_file_is_skipped_without_reading_it(corpus_dir):
    big = corpus_dir / "huge.txt"
    line = b"Machine learning engineers build models and deploy them to production.\n"
    big.write_bytes(line * (50 * 2**20 // len(line) + 1))
    t = time.perf_counter()
    warning = _only(_good_docs_only(corpus_dir), "huge.txt")
    assert time.perf_counter() - t < 5
    assert f"over the {MAX_FILE_BYTES / 2**20:g} MiB limit" in warning and "50.0 MiB" in warning


def test_a_file_just_under_the_limit_is_read(corpus_dir):
    paragraph = b"Data engineers move data.\n\n"
    (corpus_dir / "large.txt").write_bytes(paragraph * (MAX_FILE_BYTES // len(paragraph) // 8))
    docs, _ = load_corpus(corpus_dir)
    assert "large.txt" in [d.path for d in docs]


def test_deep_folders_are_read_to_a_limit(corpus_dir):
    folder = corpus_dir
    for level in range(1, 101):
        folder = folder / f"d{level}"
        folder.mkdir()
        if level in (5, MAX_DEPTH, 100):
            (folder / f"at-{level}.md").write_text(f"# Level {level}\n\nDeep notes on MLOps.\n")
    docs, warnings = load_corpus(corpus_dir)
    paths = [d.path for d in docs]
    assert any(p.endswith("at-5.md") for p in paths) and any(p.endswith(f"at-{MAX_DEPTH}.md") for p in paths)
    assert not any(p.endswith("at-100.md") for p in paths)
    assert f"more than {MAX_DEPTH} folders deep" in _only(warnings, f"d{MAX_DEPTH + 1}/")


def test_symlink_loops_and_links_out_of_the_corpus_are_skipped(corpus_dir, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text("The admin password is hunter2.\n")
    (corpus_dir / "loop").symlink_to(".", target_is_directory=True)  # a folder that contains itself
    (corpus_dir / "up").symlink_to("..", target_is_directory=True)
    (corpus_dir / "private").symlink_to(outside, target_is_directory=True)
    (corpus_dir / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus_dir / "a.txt").symlink_to("b.txt")  # a file loop
    (corpus_dir / "b.txt").symlink_to("a.txt")
    (corpus_dir / "gone.md").symlink_to("nowhere.md")
    t = time.perf_counter()
    warnings = _good_docs_only(corpus_dir)
    assert time.perf_counter() - t < 5
    for name in ("loop/", "up/", "private/", "secret.txt", "a.txt", "b.txt", "gone.md"):
        assert "symbolic links are not followed" in _only(warnings, f"skipped {name}")


def test_special_files_are_skipped_without_blocking(corpus_dir):
    os.mkfifo(corpus_dir / "pipe.txt")  # reading it would wait forever for a writer
    assert "not a regular file" in _only(_good_docs_only(corpus_dir), "pipe.txt")


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_printable_warning(corpus_dir):
    (corpus_dir / os.fsdecode(b"caf\xe9.md")).write_text("# Cafe\n\nCoffee.\n")
    warning = _only(_good_docs_only(corpus_dir), "caf")
    assert "caf\\xe9.md" in warning and "not valid UTF-8; rename it" in warning
    warning.encode("utf-8")  # can be printed and stored


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_skipped(corpus_dir):
    path = corpus_dir / "locked.md"
    path.write_text("# Locked\n\nNo access.\n")
    path.chmod(0)
    try:
        assert "cannot read it" in _only(_good_docs_only(corpus_dir), "locked.md")
    finally:
        path.chmod(0o644)


def test_a_corpus_of_only_bad_files_is_a_clear_error(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(CorpusEmpty, match=r"no readable .*empty\.txt: empty file.*latin1\.txt: not valid"):
        load_corpus(tmp_path)


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture
def fake_cli(settings) -> CliContext:
    """Run the commands with ``obj=fake_cli``: the fake embedder and a scripted generator."""

    def make(corpus, index_dir, quiet=False, **overrides):
        changes = {"corpus_dir": corpus, "index_dir": index_dir, **overrides}
        s = settings.replace(**{k: v for k, v in changes.items() if v})
        return Engine(s, embedder=FakeEmbedder(), generator=FakeGenerator(["Khan Academy [1]."] * 3))

    return CliContext(engine_factory=make)


def _add_every_bad_file(corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blob.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (corpus / "latin1.txt").write_bytes(b"r\xe9sum\xe9 tips")
    (corpus / "huge.txt").write_bytes(b"x " * (MAX_FILE_BYTES // 2 + 1))
    (corpus / "loop").symlink_to(".", target_is_directory=True)
    (corpus / "pipe.md").parent.mkdir(exist_ok=True)
    os.mkfifo(corpus / "pipe.md")


def test_index_with_bad_files_warns_and_keeps_everything_else(fake_cli, settings, corpus_dir):
    first = runner.invoke(cli.app, ["index", "--json"], obj=fake_cli)
    assert first.exit_code == 0, first.output
    before = IndexStore.load(settings.index_dir, "fake-bow", 256)

    _add_every_bad_file(corpus_dir)
    result = runner.invoke(cli.app, ["index", "--json"], obj=fake_cli)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files_added"] == [] and report["files_removed"] == [] and not report["written"]
    for name in ("empty.txt", "blob.md", "latin1.txt", "huge.txt", "loop/", "pipe.md"):
        assert f"warning: skipped {name}" in result.stderr
    after = IndexStore.load(settings.index_dir, "fake-bow", 256)
    assert after.chunks == before.chunks  # nothing lost

    events: list[str] = []
    engine = Engine(settings, embedder=FakeEmbedder(), progress=lambda e, n: events.append(e))
    assert engine.search("Khan Academy maths")[0].chunk.source == "maths.md"
    assert events == []  # the skipped files do not look like a change on every load


def test_first_build_with_bad_files(fake_cli, settings, corpus_dir):
    _add_every_bad_file(corpus_dir)
    result = runner.invoke(cli.app, ["ask", "free maths courses Khan Academy?", "--json"], obj=fake_cli)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["citations"][0]["source"] == "maths.md"
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert sorted(manifest["files"]) == GOOD


def test_only_bad_files_through_the_cli(fake_cli, tmp_path):
    corpus = tmp_path / "bad"
    corpus.mkdir()
    (corpus / "latin1.txt").write_bytes(b"caf\xe9")
    result = runner.invoke(cli.app, ["index", "--corpus", str(corpus)], obj=fake_cli)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "no readable" in result.stderr and "latin1.txt: not valid UTF-8" in result.stderr


# --------------------------------------------------------------------------- where careerqa writes


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_index_reads_the_corpus_and_writes_only_its_own_files_in_the_index_folder(
    fake_cli, tmp_path, monkeypatch
):
    corpus, shared = tmp_path / "corpus", tmp_path / "shared"
    shared.mkdir()
    others = {"notes.txt": b"mine", "chunks-notes.txt": b"mine too", ".draft.tmp": b"and this"}
    for name, data in others.items():
        (shared / name).write_bytes(data)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    corpus_before = _tree(corpus)
    for change in ("first", "second", "third"):
        (corpus / "cloud.md").write_text(f"# Cloud\n\nThe {change} version of the cloud notes.\n")
        corpus_before = _tree(corpus)
        result = runner.invoke(
            cli.app, ["index", "--corpus", str(corpus), "--index-dir", str(shared)], obj=fake_cli
        )
        assert result.exit_code == 0, result.output
        assert _tree(corpus) == corpus_before  # read, never written
    after = _tree(shared)
    assert {name: after[name] for name in others} == others  # old generations removed, nothing else
    assert len([n for n in after if n.endswith(".faiss")]) == 2  # one generation: chunks and sentences
    assert _tree(elsewhere) == {} and sorted(p.name for p in tmp_path.iterdir()) == [
        "corpus", "cwd", "shared"
    ]  # fmt: skip
