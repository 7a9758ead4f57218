"""The FAISS backend's folder: ``manifest.json``, the commit point, and the files older saves left.

``write_manifest`` is the one place ``manifest.json`` is written (atomically, by rename: ``write_atomic``);
``read_manifest`` reads it and says which way it is missing or damaged. ``remove_stale_files`` deletes
only names a save makes (older data files, temporary files of killed saves), so other files in the
folder are never touched.
Not handled here: the data files' contents and their checks (``index/faiss_store.py``) and the
manifest's fields (``index/manifest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from careerqa.errors import IndexCorrupt, IndexMissing
from careerqa.index.manifest import REBUILD_HINT, Manifest

MANIFEST = "manifest.json"
DATA_PREFIXES = ("vectors-", "sentences-", "chunks-")

# The names ``IndexStore.save`` gives its data files and its temporary files, and no others.
_GENERATED = re.compile(r"(?:vectors|sentences|chunks)-\d{8}T\d{12}-[0-9a-f]{16}\.(?:faiss|jsonl)")
_TEMPORARY = re.compile(r"\.(?:(?:vectors|sentences|chunks)-\S+|manifest\.json\.\S+)\.tmp")


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Commit ``manifest``: the one place ``manifest.json`` is written (atomically, by rename)."""
    write_atomic(index_dir / MANIFEST, manifest.to_json())


def read_manifest(index_dir: Path) -> Manifest:
    """The committed manifest: ``IndexMissing`` when there is none, ``IndexStale`` for another format,
    ``IndexCorrupt`` when it cannot be read or a field is damaged."""
    path = index_dir / MANIFEST
    if not path.exists():
        leftovers = [p.name for p in index_dir.glob("*-*.*") if p.name.startswith(DATA_PREFIXES)]
        if leftovers:
            raise IndexMissing(
                f"no index in {index_dir}: {path} is missing (its data files are still there); "
                "run `careerqa index` to rebuild it"
            )
        raise IndexMissing(f"no index in {index_dir}: run `careerqa index` to build it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"the index manifest {path} is unreadable ({exc}); {REBUILD_HINT}") from exc
    return Manifest.from_dict(data, str(path))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_path(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def remove_orphans(index_dir: Path, manifest: Manifest) -> None:
    """Delete data and temporary files the committed ``manifest`` does not name (left by a build killed
    after its commit or during its save). Call it holding ``write_lock``."""
    remove_stale_files(index_dir, keep=set(manifest.data_files))


def remove_stale_files(index_dir: Path, keep: set[str]) -> None:
    """Delete older data files and the temporary files of killed saves: only names ``save`` makes, so
    other files in the folder are never touched."""
    for path in index_dir.iterdir():
        name = path.name
        if (_GENERATED.fullmatch(name) and name not in keep) or _TEMPORARY.fullmatch(name):
            with contextlib.suppress(OSError):
                path.unlink()
