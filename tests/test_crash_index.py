"""Crash safety, quick version: `bench/crash_index.py` with the fake embedder and three SIGKILLs.

The long run (24 kills, the real embedder) is `python bench/crash_index.py`; see the README.
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
