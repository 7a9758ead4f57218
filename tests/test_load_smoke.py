"""A short run of ``bench/load_test.py``: 8 clients for 10 s on /search, /chat and /v1 while the
corpus changes and /reindex runs every second or so. The long run (20 clients, 2 minutes) is
``python bench/load_test.py``; its result is ``bench/results/load.json``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("careerqa_load_test", REPO / "bench" / "load_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_load_with_reindexing_loses_and_mixes_nothing(tmp_path):
    bench = load_bench()
    out = tmp_path / "load.json"
    config = bench.Config(
        duration=10, clients=8, reindex_every=1.0, answer_min=0.05, answer_max=0.3, out=out, seed=11
    )
    report = bench.run(config)
    checks = report["checks"]
    assert json.loads(out.read_text(encoding="utf-8"))["checks"] == checks
    assert checks["failed_requests"] == 0, report["examples"]["failures"]
    assert checks["mixed_version_responses"] == 0, report["examples"]["mixed"]
    assert checks["unknown_version_responses"] == 0, report["examples"]["unknown_version"]
    assert checks["lost_data"] == 0 and checks["stale_data"] == 0, report["examples"]
    assert checks["reindex_failures"] == 0, report["reindex"]["failures"]
    assert checks["server_errors_logged"] == 0, report["examples"]["server_errors"]
    assert checks["server_and_disk_versions_disagree"] == 0
    assert checks["threads_still_running"] == 0
    assert checks["reindexes_done"] >= 3 and report["index_versions"]["seen_in_responses"] >= 2
    assert report["requests"]["served"] > 50
    assert set(report["endpoints"]) == {"search", "chat", "chat_sse", "openai", "openai_sse"}
    assert report["endpoints"]["search"]["status"] == {"200": report["endpoints"]["search"]["requests"]}
    assert report["ok"], checks
