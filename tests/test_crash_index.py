"""Crash safety, quick version: `bench/crash_index.py` with the fake embedder and three SIGKILLs.

The long run (24 kills, the real embedder) is `python bench/crash_index.py`; see docs/manual.md,
"Bad input and recovery".
"""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO


def test_killed_index_runs_lose_nothing(tmp_path):
    out = tmp_path / "crash.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "crash_index.py"), "--embedder", "fake", "--kills", "3",
         "--complete-every", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ok"] and result["kills"] == 3
    assert result["after_kill"] == {"lock_free": result["rounds"], "loads_ok": result["rounds"],
                                    "searches_and_answers_ok": result["rounds"]}  # fmt: skip
    assert result["lost_data"] == 0 and result["failures"] == [] and result["unexpected_errors"] == []
    assert result["completed_runs_ok"] == result["completed_runs"] >= 1
    assert result["final_run"]["ok"] and result["final_run"]["leftover_files"] == []


def test_a_sync_with_nothing_to_do_removes_what_a_killed_build_left(settings, fake_embedder):
    """Killed after its commit, before its clean-up: the next run finds nothing to embed, and tidies."""
    from careerqa.index.faiss_store import IndexStore
    from careerqa.index.sync import sync_index

    def sync():
        return sync_index(settings, lambda: fake_embedder, embedder_name="fake-bow", dim=256)

    sync()
    index_dir = settings.index_dir
    before = sorted(p.name for p in index_dir.iterdir())
    orphans = [
        "vectors-20200101T000000000000-0123456789abcdef.faiss",
        "chunks-20200101T000000000000-0123456789abcdef.jsonl",
        ".manifest.json.k2j3h4.tmp",
        ".sentences-20200101T000000000000-0123456789abcdef.faiss.tmp",
    ]
    for name in orphans:
        (index_dir / name).write_bytes(b"left by a killed build")
    (index_dir / "notes.txt").write_text("not careerqa's")
    report = sync()
    assert not report.written
    assert sorted(p.name for p in index_dir.iterdir()) == sorted([*before, "notes.txt"])
    IndexStore.load(index_dir, "fake-bow", 256)
