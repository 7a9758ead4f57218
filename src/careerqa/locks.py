"""The one inter-process lock: an exclusive ``flock`` on a lock file, created if missing.

Used wherever two processes (a server and a CLI, two ``careerqa index`` runs) could write the same
files: the model file assembly, the ONNX export, the index writers, the passage KV caches, the
llama.cpp build check and the question log. The OS releases the lock when its holder dies, so a killed
process never leaves a folder locked.

Not handled here: locking between threads of one process (callers pair it with a ``threading.Lock``
where they need one) and timeouts (a waiter waits until the holder is done, or with ``try_file_lock``
not at all).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block; the file is made if missing and
    never written (its folder must exist)."""
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def try_file_lock(path: Path) -> Iterator[bool]:
    """``file_lock`` without waiting: yields True while this holds the lock, False (at once) when
    another holder has it."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
