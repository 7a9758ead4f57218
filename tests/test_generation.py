from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from careerqa.config import Settings
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.generate import model_files
from careerqa.generate.llama import LlamaGenerator, load_generator
from careerqa.generate.model_files import MODELS, ModelProfile, ensure_model

from .conftest import fake_model_profile
from .fakes import FakeGenerator

# --------------------------------------------------------------------------- FakeGenerator


def test_fake_generator_streams_word_pieces_that_join_back() -> None:
    reply = "Data scientists  use Python [1].\nThey also use SQL [2]."
    gen = FakeGenerator([reply])
    pieces = list(gen.stream([{"role": "user", "content": "q"}], max_tokens=100))
    assert len(pieces) > 5
    assert "".join(pieces) == reply


def test_fake_generator_replies_in_turn_and_records_calls() -> None:
    gen = FakeGenerator(["first answer", "second answer"])
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q1"}]
    assert gen.generate(msgs, max_tokens=50) == "first answer"
    assert gen.generate([{"role": "user", "content": "q2"}], max_tokens=50) == "second answer"
    assert gen.calls == [msgs, [{"role": "user", "content": "q2"}]]
    with pytest.raises(AssertionError):
        gen.generate(msgs, max_tokens=50)


def test_fake_generator_callable_stop_and_max_tokens() -> None:
    gen = FakeGenerator(lambda messages: "echo: " + messages[-1]["content"] + " END trailing")
    assert (
        gen.generate([{"role": "user", "content": "hi there"}], max_tokens=50, stop=[" END"])
        == "echo: hi there"
    )
    assert gen.generate([{"role": "user", "content": "a b c d"}], max_tokens=3) == "echo: a b"
    assert gen.count_tokens("one two  three") == 3


# --------------------------------------------------------------------------- ensure_model


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelProfile:
    """A three-part 'model' whose part modules are fake modules pointing at files under tmp_path."""
    return fake_model_profile(
        tmp_path, monkeypatch, [os.urandom(70_000), os.urandom(123_457), b"tail bytes"], "fake_model_part"
    )


def _expected(profile: ModelProfile) -> bytes:
    return b"".join(Path(sys.modules[m].get_part_path()).read_bytes() for m in profile.parts)


def test_ensure_model_assembles_and_verifies(tmp_path: Path, tiny_model: ModelProfile) -> None:
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == _expected(tiny_model)
    assert (cache / "tiny.gguf.sha256-ok").is_file()
    assert not list(cache.glob("*.tmp"))


def test_ensure_model_second_call_skips_hashing(
    tmp_path: Path, tiny_model: ModelProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    ensure_model("tiny", cache, progress=False)

    def no_hash(*args: object) -> str:
        raise AssertionError("a stamped file must not be hashed again")

    monkeypatch.setattr(model_files, "_sha256", no_hash)
    monkeypatch.setattr(model_files, "_assemble", no_hash)
    assert ensure_model("tiny", cache, progress=False).read_bytes() == _expected(tiny_model)


def test_ensure_model_hashes_an_unstamped_good_file_once(
    tmp_path: Path, tiny_model: ModelProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tiny.gguf").write_bytes(_expected(tiny_model))
    hashed: list[Path] = []
    real_sha = model_files._sha256
    monkeypatch.setattr(model_files, "_sha256", lambda p, *a: hashed.append(p) or real_sha(p, *a))
    monkeypatch.setattr(model_files, "_assemble", lambda *a: pytest.fail("a good file must not be rebuilt"))
    ensure_model("tiny", cache, progress=False)
    ensure_model("tiny", cache, progress=False)
    assert hashed == [cache / "tiny.gguf"]


def test_ensure_model_rebuilds_a_truncated_file(tmp_path: Path, tiny_model: ModelProfile) -> None:
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    with path.open("r+b") as f:
        f.truncate(1000)
    assert ensure_model("tiny", cache, progress=False).read_bytes() == _expected(tiny_model)


def _corrupt(path: Path) -> None:
    """Flip one byte in the middle, keeping the size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_ensure_model_rebuilds_a_corrupt_unstamped_file(tmp_path: Path, tiny_model: ModelProfile) -> None:
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    (cache / "tiny.gguf.sha256-ok").unlink()
    _corrupt(path)
    assert path.stat().st_size == tiny_model.size
    assert ensure_model("tiny", cache, progress=False).read_bytes() == _expected(tiny_model)
    assert (cache / "tiny.gguf.sha256-ok").is_file()


def test_ensure_model_rehashes_when_the_stamp_is_stale(tmp_path: Path, tiny_model: ModelProfile) -> None:
    cache = tmp_path / "cache"
    path = ensure_model("tiny", cache, progress=False)
    stamp_before = (cache / "tiny.gguf.sha256-ok").read_text()
    _corrupt(path)  # same size, but the rewrite changes the mtime the stamp recorded
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert ensure_model("tiny", cache, progress=False).read_bytes() == _expected(tiny_model)
    assert (cache / "tiny.gguf.sha256-ok").read_text() != stamp_before


def test_ensure_model_removes_leftover_temp_files(tmp_path: Path, tiny_model: ModelProfile) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    leftover = cache / "tiny.gguf.abc123.tmp"
    leftover.write_bytes(b"half a model")
    ensure_model("tiny", cache, progress=False)
    assert not leftover.exists()


def test_missing_part_package_names_the_package(
    tmp_path: Path, tiny_model: ModelProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fake_model_part2", None)  # makes the import fail
    with pytest.raises(ModelUnavailable, match=r"pip install fake-model-part2==9\.9\.9"):
        ensure_model("tiny", tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "tiny.gguf").exists()


def test_parts_that_join_wrong_are_rejected(
    tmp_path: Path, tiny_model: ModelProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = Path(sys.modules["fake_model_part1"].get_part_path())
    _corrupt(part)
    with pytest.raises(ModelUnavailable, match="fails verification"):
        ensure_model("tiny", tmp_path / "cache", progress=False)
    cache = tmp_path / "cache"
    assert not (cache / "tiny.gguf").exists() and not list(cache.glob("*.tmp"))


def test_unknown_model_name_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="qwen2.5-coder-1.5b"):
        ensure_model("gpt-17", tmp_path, progress=False)


def test_ensure_model_waits_for_the_lock_and_assembles_once(
    tmp_path: Path, tiny_model: ModelProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    assembled: list[Path] = []
    real_assemble = model_files._assemble
    monkeypatch.setattr(
        model_files, "_assemble", lambda p, t, g: assembled.append(t) or real_assemble(p, t, g)
    )
    results: list[Path] = []
    with (cache / "tiny.gguf.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # another "process" is assembling
        threads = [
            threading.Thread(target=lambda: results.append(ensure_model("tiny", cache, progress=False)))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert results == [] and assembled == []  # both are blocked on the lock
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 2
    assert assembled == [cache / "tiny.gguf"]
    assert results[0].read_bytes() == _expected(tiny_model)


def test_registry_profiles_are_consistent() -> None:
    assert set(MODELS) == {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}
    assert Settings().generator in MODELS
    for profile in MODELS.values():
        assert len(profile.sha256) == 64
        assert profile.filename.endswith(".gguf")


# --------------------------------------------------------------------------- LlamaGenerator, no model


class _FakeLlama:
    """Stands in for llama_cpp.Llama: streams OpenAI-style chunks and records the sampling options."""

    def __init__(self) -> None:
        self.kwargs: dict[str, object] = {}

    def create_chat_completion(self, **kwargs: object) -> object:
        self.kwargs = kwargs
        if kwargs["messages"] == "too long":
            raise ValueError("Requested tokens (5000) exceed context window of 4096")
        deltas = [{"role": "assistant"}, {"content": "Hello"}, {"content": " world"}, {}]
        return iter({"choices": [{"delta": d}]} for d in deltas)


def _llama_generator() -> tuple[LlamaGenerator, _FakeLlama]:
    gen = LlamaGenerator.__new__(LlamaGenerator)  # skip loading a model
    fake = _FakeLlama()
    gen._llama = fake  # type: ignore[assignment]
    gen.name, gen._lock, gen._owner = "fake-llama", threading.Lock(), None
    gen._state, gen._streams, gen._last_end = threading.Lock(), 0, 0.0
    return gen, fake


def test_llama_generator_streams_deltas_greedily() -> None:
    gen, fake = _llama_generator()
    assert list(gen.stream([{"role": "user", "content": "hi"}], max_tokens=5, stop=["\n\n"])) == [
        "Hello",
        " world",
    ]
    assert fake.kwargs["stream"] is True
    assert (fake.kwargs["temperature"], fake.kwargs["top_k"], fake.kwargs["repeat_penalty"]) == (0.0, 1, 1.0)
    assert (fake.kwargs["max_tokens"], fake.kwargs["stop"]) == (5, ["\n\n"])


def test_llama_generator_context_overflow_is_bad_input() -> None:
    gen, _ = _llama_generator()
    with pytest.raises(BadInput, match="too long"):
        gen.generate("too long", max_tokens=5)  # type: ignore[arg-type]
    assert gen.generate([{"role": "user", "content": "hi"}], max_tokens=5) == "Hello world"  # lock released


def test_llama_generator_refuses_a_nested_stream_instead_of_deadlocking() -> None:
    gen, _ = _llama_generator()
    first = gen.stream([{"role": "user", "content": "hi"}], max_tokens=5)
    next(first)
    with pytest.raises(RuntimeError, match="still open"):
        gen.generate([{"role": "user", "content": "again"}], max_tokens=5)
    first.close()
    assert gen.generate([{"role": "user", "content": "again"}], max_tokens=5) == "Hello world"


# --------------------------------------------------------------------------- the real model


@pytest.mark.real
def test_real_model_generates_greedily() -> None:
    settings = Settings.from_env(generator="qwen2.5-coder-1.5b")
    gen = load_generator(settings, progress=False)
    messages = [
        {"role": "system", "content": "You answer with one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    pieces = list(gen.stream(messages, max_tokens=16))
    text = "".join(pieces)
    assert "Paris" in text
    assert gen.count_tokens(text) <= 16
    assert gen.generate(messages, max_tokens=16) == text  # greedy: the same answer again
    assert 0 < gen.count_tokens("Machine learning engineer") < 10


@pytest.mark.real
def test_real_model_reuses_the_kv_cache_for_a_shared_system_prompt() -> None:
    import llama_cpp

    gen = load_generator(Settings.from_env(generator="qwen2.5-coder-0.5b"), progress=False)
    assert isinstance(gen, LlamaGenerator)
    system = {"role": "system", "content": "You are a careers adviser. " * 40}
    evaluated = []
    for question in ("Name one AI job.", "Name one data job."):
        llama_cpp.llama_perf_context_reset(gen._llama._ctx.ctx)
        gen.generate([system, {"role": "user", "content": question}], max_tokens=2)
        evaluated.append(llama_cpp.llama_perf_context(gen._llama._ctx.ctx).n_p_eval)
    assert evaluated[0] > 200
    assert evaluated[1] < 30  # only the new question and the chat markup after the system prompt
