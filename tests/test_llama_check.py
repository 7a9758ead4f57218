"""The child-process check of llama.cpp before a process loads the model, and ``careerqa doctor``.

Unit tests drive ``check_llama`` with probe commands that really die of a signal (or succeed); the
CLI tests put a fake ``llama_cpp`` package first on the path whose import kills the process with
SIGILL, as a library built for CPU features the machine forbids does. The real-model tests check the
installed library itself and generate text with it in a child process, so a broken build fails CI
with a readable message.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import careerqa.cli as cli
from careerqa.config import Settings
from careerqa.errors import ModelUnavailable
from careerqa.generate import llama_check

from .conftest import REPO

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512bw amx_tile amx_int8 hypervisor
"""
SYSTEM_INFO = (
    "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 |"
)


@pytest.fixture
def fake_library(tmp_path, monkeypatch):
    """A llama_cpp package folder with one 'compiled library' whose stat is part of the check's key."""
    lib = tmp_path / "site" / "llama_cpp"
    (lib / "lib").mkdir(parents=True)
    so = lib / "lib" / "libggml-cpu.so"
    so.write_bytes(b"\x7fELF first build")
    monkeypatch.setattr(llama_check, "library_dir", lambda: lib)
    return so


def _probe(tmp_path: Path, body: str) -> list[str]:
    """A probe command that counts its runs in ``runs.txt`` and then runs ``body``."""
    counter = tmp_path / "runs.txt"
    script = f"open({str(counter)!r}, 'a').write('x')\n" + body
    return [sys.executable, "-c", script]


def _runs(tmp_path: Path) -> int:
    path = tmp_path / "runs.txt"
    return len(path.read_text()) if path.exists() else 0


OK_BODY = f"print('system_info: {SYSTEM_INFO}'); print('result: ok')"
SIGILL_BODY = (
    f"import os, signal, sys; print('system_info: {SYSTEM_INFO}'); sys.stdout.flush(); "
    "os.kill(os.getpid(), signal.SIGILL)"
)


def test_cpu_info_reads_the_model_and_the_flags_that_matter(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    cpu = llama_check.cpu_info(path)
    assert cpu.model == "Example CPU @ 2.0GHz"
    assert cpu.flags == (
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi2",
        "avx512f",
        "avx512bw",
        "amx_tile",
        "amx_int8",
    )


def test_features_the_library_uses_and_the_cpu_lacks(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.replace(" avx512f avx512bw amx_tile amx_int8", ""))
    cpu = llama_check.cpu_info(path)
    assert llama_check.enabled_features(SYSTEM_INFO)[:3] == ["SSE3", "AVX", "AVX2"]
    assert llama_check.missing_features(SYSTEM_INFO, cpu) == ["AVX512", "AMX_INT8"]


def test_a_passing_check_is_remembered_and_costs_nothing_after(tmp_path, fake_library):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, OK_BODY)
    first = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert first.ok and not first.cached and first.system_info == SYSTEM_INFO
    second = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert second.ok and second.cached and _runs(tmp_path) == 1
    assert llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe, recheck=True).cached is False
    assert _runs(tmp_path) == 2


def test_a_rebuilt_library_is_checked_again(tmp_path, fake_library):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, OK_BODY)
    llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    fake_library.write_bytes(b"\x7fELF second build, other flags")
    again = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert not again.cached and _runs(tmp_path) == 2


def test_a_child_killed_by_sigill_is_one_clear_error_and_is_not_remembered(tmp_path, fake_library):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, SIGILL_BODY)
    result = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert not result.ok
    assert "SIGILL" in result.error and "CPU" in result.error
    assert "AMX_INT8" in result.error  # which features the library uses
    assert llama_check.REBUILD_HINT in result.error and "\n" not in result.error
    llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert _runs(tmp_path) == 2  # a failure is tried again next time


def test_a_crash_with_amx_kernels_names_amx(tmp_path, fake_library):
    """What a -march=native build does on a VM that reports AMX: SIGSEGV in the first decode."""
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, SIGILL_BODY.replace("SIGILL", "SIGSEGV"))
    result = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert not result.ok and "SIGSEGV" in result.error and "AMX kernels" in result.error


def test_a_child_that_exits_with_an_error_names_its_message(tmp_path, fake_library):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, "import sys; sys.stderr.write('failed to load model\\n'); sys.exit(3)")
    result = llama_check.check_llama(model, tmp_path / "cache", probe_cmd=probe)
    assert not result.ok and "exit code 3" in result.error and "failed to load model" in result.error


def test_a_hung_child_times_out(tmp_path, fake_library):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    result = llama_check.check_llama(
        model, tmp_path / "cache", probe_cmd=_probe(tmp_path, "import time; time.sleep(30)"), timeout_s=0.5
    )
    assert not result.ok and "did not finish" in result.error


def test_ensure_raises_model_unavailable(tmp_path, fake_library, monkeypatch):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"gguf")
    probe = _probe(tmp_path, SIGILL_BODY)
    real = llama_check.check_llama
    monkeypatch.setattr(llama_check, "check_llama", lambda *a, **k: real(*a, **k, probe_cmd=probe))
    with pytest.raises(ModelUnavailable, match="SIGILL"):
        llama_check.ensure_llama_runs(model, tmp_path / "cache")


# --- through the CLI, with a library whose import dies of SIGILL -----------------------------------


@pytest.fixture
def sigill_llama(tmp_path):
    """An environment whose ``llama_cpp`` kills the importing process with SIGILL."""
    fake = tmp_path / "fake-site" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), str(REPO / "src")]))
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # results of this fake are kept away from the real ones
    # The model file itself is the real one, assembled once in the real cache.
    env["CAREERQA_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def _link_model(cache: Path) -> None:
    """Point the test's cache at the real, verified model (a symlink and its stamp, not a 1.1 GB copy)."""
    from careerqa.generate.model_files import MODELS, ensure_model

    profile = MODELS["qwen2.5-coder-1.5b"]
    real = ensure_model(profile.name, Settings.from_env().cache_dir, progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / profile.filename).symlink_to(real)
    stamp = real.with_name(real.name + ".sha256-ok")
    shutil.copy(stamp, cache / stamp.name)


@pytest.mark.real
def test_serve_refuses_to_start_with_one_line_when_llama_cannot_run(tmp_path, sigill_llama):
    _link_model(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-m", "careerqa", "serve", "--port", "1"],
        capture_output=True, text=True, env=sigill_llama, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "SIGILL" in errors[0] and "make llama" in errors[0]
    assert "Traceback" not in proc.stderr and "Fatal Python error" not in proc.stderr


@pytest.mark.real
def test_doctor_reports_the_broken_library_and_exits_1(tmp_path, sigill_llama):
    _link_model(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-m", "careerqa", "doctor", "--json"],
        capture_output=True, text=True, env=sigill_llama, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["llama"]["check"]["ok"] is False
    parts = {p["part"] for p in report["problems"]}
    assert "llama" in parts
    assert any("SIGILL" in p["what"] and "make llama" in p["fix"] for p in report["problems"])


def test_doctor_without_the_check_reports_settings_and_index(tmp_path, monkeypatch):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("# A\n\nSome text about careers in AI.\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAREERQA_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli.app, ["doctor", "--json", "--no-check"])
    report = json.loads(result.stdout)
    assert report["llama"]["check"] is None
    assert report["index"]["state"] == "missing" and report["notes"]
    assert report["settings"]["admin_token"] == "(not set)"
    assert report["models"]["files"]["qwen2.5-coder-1.5b"]["state"] == "missing"
    # The configured model is not there and was not joined: that is a problem with its fix.
    assert result.exit_code == 1 and any(p["part"] == "model" for p in report["problems"])


def test_doctor_rejects_a_bad_setting_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CAREERQA_TOP_K", "many")
    result = CliRunner().invoke(cli.app, ["doctor", "--no-check"])
    assert result.exit_code == 2 and "CAREERQA_TOP_K" in result.output


# --- the installed library itself -----------------------------------------------------------------


@pytest.mark.real
def test_the_installed_llama_cpp_passes_its_check_on_this_cpu(tmp_path):
    from careerqa.generate.model_files import ensure_model

    settings = Settings.from_env()
    model = ensure_model(settings.generator, settings.cache_dir, progress=False)
    result = llama_check.check_llama(model, tmp_path / "cache", recheck=True)
    assert result.ok, result.error
    assert not llama_check.missing_features(result.system_info, llama_check.cpu_info())


@pytest.mark.real
def test_real_text_is_generated_in_a_child_process(tmp_path):
    """`careerqa ask` on a question the FAQ path does not answer: llama.cpp must decode real text."""
    shutil.copytree(REPO / "corpus", tmp_path / "corpus")
    proc = subprocess.run(
        [sys.executable, "-m", "careerqa", "ask", "--json", "When is C++ or Java worth learning for AI?"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env=dict(os.environ, CAREERQA_INDEX_DIR=str(tmp_path / "index")),
    )  # fmt: skip
    if proc.returncode < 0:
        pytest.fail(
            f"careerqa ask died of {signal.Signals(-proc.returncode).name}: llama.cpp cannot run on this "
            f"CPU; rebuild it with `make llama`.\n{proc.stderr[-2000:]}"
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    assert answer["route"] == "generated" and not answer["abstained"], answer
    assert answer["draft"].strip() and answer["citations"], answer
